"""LM Bridge's proxy overhead, side by side with a bare aiohttp relay (the floor).

Four processes, all on 127.0.0.1: the fake upstream
(fake_upstream_server.py), LM Bridge (`python -m lmbridge serve`, one
"openai" upstream on the fake; `claude-*` models translated Anthropic ->
Chat), the floor relay (floor_relay.py, in front of the same fake) and the
load generator (loadgen.py). Every figure comes from the same run; the
targets are interleaved in blocks of a few requests, so a busy machine
hurts them alike.

"Added" means: the percentile through a proxy minus the same percentile
calling the fake directly (same bytes, same path). LM Bridge's own cost is
the LM Bridge figure minus the floor figure (column LMB-floor).

- pass-through 1 KB: an OpenAI Chat request, non-streaming, to
  /v1/chat/completions (LM Bridge relays it unchanged).
- translate 50 KB: a Claude Code-shaped Anthropic request (system prompt,
  12 tools, 7 turns; 49.8 KB) to /v1/messages, non-streaming. LM Bridge
  translates it to Chat and the answer back; the floor and the direct call
  send the same bytes to the fake's /v1/messages, which answers in
  Anthropic's shape (the floor cannot translate). LM Bridge always asks
  the upstream for a stream: "upstream leg" is the fake answering LM
  Bridge's translated body directly, as a stream; it shows how much of the
  added time is the fake streaming rather than LM Bridge.
- TTFT: time until the first chunk holding a text token, streaming
  (pass-through Chat; and a small Anthropic request translated to Chat).
- per streamed chunk: one stream of 1000 small frames;
  (p50 total through the proxy - p50 direct) / 1000.
- CPU per request: the proxy process's own CPU time, all its threads
  (/proc/PID/task/*/schedstat: LM Bridge's database writer counts too)
  over the phase / requests; not skewed by other load on the machine,
  unlike wall-clock figures.
- concurrency 50: pass-through 1 KB requests, 50 workers, timed windows
  alternating direct, floor and LM Bridge (8 windows of 2 s each; 2 of
  1 s with --quick).
- memory: LM Bridge's VmRSS idle after start (headless), its peak during
  100 concurrent streams (50 pass-through, 50 translated 50 KB), and after.
- event loops (`--loop`): "shipped" (the default) runs LM Bridge as it
  ships (`[server] event_loop = "auto"`: uvloop where installed) against a
  stock aiohttp relay on asyncio's loop, what a user would write;
  "asyncio" and "uvloop" run both on that loop, which shows LM Bridge's
  own cost over the relay with the loop's taken out.

Run: python bench/bench_proxy.py [--quick]   (part of `make bench`, ~2 min)
     python bench/bench_proxy.py --only translate_50k --profile DIR
         (py-spy attached to LM Bridge; collapsed stacks in DIR/<phase>.txt)
Results: printed, and written to bench/results/proxy-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "app"))

import payloads
import procs
from lmbridge.protocols.registry import front_door, upstream_codec

TARGETS = ["direct", "floor", "lmbridge"]
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
OPENAI_TOKEN = '"content":"tok'
ANTHROPIC_TOKEN = '"text_delta"'

# Targets: LM Bridge minus floor, in milliseconds, unless said otherwise.
# Pass-through's p50 and the c50 ratio are issue 21's ("nothing may slow
# the answer path": within 0.1 ms of the floor, at least 90% of its rate).
TARGET_PASS_P50 = 0.10
TARGET_TRANSLATE_P50 = 1.0
TARGET_TTFT_P50 = 0.2
TARGET_RPS_RATIO = 0.90
TARGET_IDLE_MB = 80.0


def translated(body: bytes) -> bytes:
    """The Chat body LM Bridge sends upstream for Anthropic `body`."""
    return upstream_codec("openai").encode_request(
        front_door("anthropic").parse_request(body)
    )


def plan(quick: bool, pids: dict[str, int]) -> dict[str, Any]:
    n = 400 if quick else 2000
    warm = 50 if quick else 200
    secs = 1.0 if quick else 2.0
    seq = {
        "kind": "sequential",
        "targets": TARGETS,
        "warmup": warm,
        "block": 5,
        "pids": pids,
    }
    big = payloads.anthropic_claude_code()
    slow = "-chunks-100-delay-20"  # 100 frames, 20 ms apart: streams stay open
    return {
        "phases": [
            {
                **seq,
                "name": "pass_1k",
                "path": CHAT,
                "body": procs.b64(payloads.openai_small()),
                "n": n,
            },
            {
                **seq,
                "name": "translate_50k",
                "targets": [*TARGETS, "upstream_leg"],
                "path": MESSAGES,
                "body": procs.b64(big),
                "n": n,
                "variants": {
                    "upstream_leg": {
                        "target": "direct",
                        "path": CHAT,
                        "body": procs.b64(translated(big)),
                        "stream": True,
                    }
                },
            },
            {
                **seq,
                "name": "ttft_pass",
                "path": CHAT,
                "body": procs.b64(payloads.openai_small(stream=True)),
                "stream": True,
                "marker": OPENAI_TOKEN,
                "n": n,
            },
            {
                **seq,
                "name": "ttft_translate",
                "path": MESSAGES,
                "body": procs.b64(payloads.anthropic_small(stream=True)),
                "stream": True,
                "marker": ANTHROPIC_TOKEN,
                "n": n // 2,
            },
            {
                **seq,
                "name": "chunks_pass",
                "path": CHAT,
                "body": procs.b64(
                    payloads.openai_small("fake-chunks-1000", stream=True)
                ),
                "stream": True,
                "n": 40 if quick else 150,
                "warmup": 10,
                "block": 2,
            },
            {
                **seq,
                "name": "chunks_translate",
                "path": MESSAGES,
                "body": procs.b64(
                    payloads.anthropic_small("claude-chunks-1000", stream=True)
                ),
                "stream": True,
                "n": 20 if quick else 60,
                "warmup": 5,
                "block": 2,
            },
            {
                "kind": "concurrent",
                "name": "c50_pass",
                "targets": TARGETS,
                "pids": pids,
                "path": CHAT,
                "body": procs.b64(payloads.openai_small()),
                "concurrency": 50,
                "warmup_s": 1.0,
                "seconds": secs,
                "rounds": 2 if quick else 8,
            },
            {
                "kind": "streams",
                "name": "streams_100",
                "targets": ["lmbridge", "floor"],
                "pids": pids,
                "count": 100,
                "mix": [
                    {
                        "path": CHAT,
                        "body": procs.b64(
                            payloads.openai_small("fake" + slow, stream=True)
                        ),
                    },
                    {
                        "path": MESSAGES,
                        "body": procs.b64(
                            payloads.anthropic_claude_code("claude" + slow, stream=True)
                        ),
                    },
                ],
            },
        ]
    }


class Table:
    """Rows of figures: direct, floor, LM Bridge, their difference, a target."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        metric: str,
        unit: str,
        direct: float | None,
        floor: float | None,
        lmb: float,
        target: str = "",
        ok: bool | None = None,
    ) -> None:
        self.rows.append(
            {
                "metric": metric,
                "unit": unit,
                "direct": direct,
                "floor": floor,
                "lmbridge": lmb,
                "lmbridge_minus_floor": None if floor is None else lmb - floor,
                "target": target,
                "ok": ok,
            }
        )

    def added(
        self,
        res: dict[str, Any],
        key: str,
        label: str,
        limit: float | None = None,
    ) -> None:
        """p50 and p99 rows: the quantile via each proxy minus direct."""
        for q in ("p50", "p99"):
            direct = res["direct"][key][q]
            floor = res["floor"][key][q] - direct
            lmb = res["lmbridge"][key][q] - direct
            if q == "p50" and limit is not None:
                target = f"LMB-floor <= {limit} ms"
                self.add(
                    f"{label} {q}",
                    "ms",
                    direct,
                    floor,
                    lmb,
                    target,
                    lmb - floor <= limit,
                )
            else:
                self.add(f"{label} {q}", "ms", direct, floor, lmb)

    def cpu(self, res: dict[str, Any], label: str, per: int = 1) -> None:
        unit = "µs" if per == 1 else "µs/ch"
        self.add(
            label,
            unit,
            None,
            res["floor"]["cpu_us_per_request"] / per / 1000,
            res["lmbridge"]["cpu_us_per_request"] / per / 1000,
            "info (proxy process CPU)",
        )


def summarise(r: dict[str, Any], mem: dict[str, Any]) -> list[dict[str, Any]]:
    t = Table()
    t.added(r["pass_1k"], "total", "pass-through 1 KB, added", TARGET_PASS_P50)
    t.cpu(r["pass_1k"], "pass-through 1 KB, CPU per request")
    res = r["translate_50k"]
    t.added(res, "total", "translate 50 KB, added", TARGET_TRANSLATE_P50)
    t.cpu(res, "translate 50 KB, CPU per request")
    leg = res["upstream_leg"]["total"]["p50"] - res["direct"]["total"]["p50"]
    t.add(
        "  of which upstream leg streams, p50",
        "ms",
        res["upstream_leg"]["total"]["p50"],
        None,
        leg,
        "info (fake streaming LMB's body, minus direct)",
    )
    t.added(r["ttft_pass"], "ttft", "TTFT pass-through, added", TARGET_TTFT_P50)
    t.cpu(r["ttft_pass"], "pass-through stream, CPU per request")
    t.added(
        r["ttft_translate"], "ttft", "TTFT translated small, added", TARGET_TTFT_P50
    )
    t.cpu(r["ttft_translate"], "translated small stream, CPU per req")
    for phase, label in (
        ("chunks_pass", "per chunk, pass-through"),
        ("chunks_translate", "per chunk, translated"),
    ):
        res = r[phase]
        direct = res["direct"]["total"]["p50"]
        t.add(
            f"{label} (1000-frame stream)",
            "µs",
            direct / 1000,
            (res["floor"]["total"]["p50"] - direct) / 1000,
            (res["lmbridge"]["total"]["p50"] - direct) / 1000,
            "info (p50 added / 1000)",
        )
        t.cpu(res, f"{label}, CPU per chunk", per=1000)
    c = r["c50_pass"]
    ratio = c["lmbridge"]["rps"] / c["floor"]["rps"]
    t.add(
        "concurrency 50, requests/s",
        "req/s",
        c["direct"]["rps"],
        c["floor"]["rps"],
        c["lmbridge"]["rps"],
        f">= {TARGET_RPS_RATIO:.0%} of floor ({ratio:.0%})",
        ratio >= TARGET_RPS_RATIO,
    )
    t.add(
        "concurrency 50, p99 latency",
        "ms",
        c["direct"]["latency"]["p99"],
        c["floor"]["latency"]["p99"],
        c["lmbridge"]["latency"]["p99"],
        "info",
    )
    t.cpu(c, "concurrency 50, CPU per request")
    idle = mem["lmbridge_idle_kb"] / 1024
    t.add(
        "RSS idle, headless",
        "MB",
        None,
        mem["floor_idle_kb"] / 1024,
        idle,
        f"LMB <= {TARGET_IDLE_MB:.0f} MB",
        idle <= TARGET_IDLE_MB,
    )
    s = r["streams_100"]
    t.add(
        "RSS peak, 100 concurrent streams",
        "MB",
        None,
        s["floor"]["rss_peak_kb"] / 1024,
        s["lmbridge"]["rss_peak_kb"] / 1024,
        "info",
    )
    t.add(
        "RSS after the run",
        "MB",
        None,
        mem["floor_end_kb"] / 1024,
        mem["lmbridge_end_kb"] / 1024,
        "info",
    )
    return t.rows


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit.startswith("µs"):
        return f"{value * 1000:.1f}"
    if unit == "req/s":
        return f"{value:.0f}"
    if unit == "MB":
        return f"{value:.1f}"
    return f"{value:.3f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'figure':40s} {'unit':>5s} {'direct':>8s} {'floor':>8s} "
        f"{'LM Bridge':>9s} {'LMB-floor':>9s}  target"
    )
    print(head)
    print("-" * (len(head) + 40))
    for x in rows:
        verdict = "" if x["ok"] is None else ("  PASS" if x["ok"] else "  FAIL")
        print(
            f"{x['metric']:40s} {x['unit']:>5s} {_fmt(x['direct'], x['unit']):>8s} "
            f"{_fmt(x['floor'], x['unit']):>8s} {_fmt(x['lmbridge'], x['unit']):>9s} "
            f"{_fmt(x['lmbridge_minus_floor'], x['unit']):>9s}  {x['target']}{verdict}"
        )
    print(
        "\ndirect: the fake called directly (absolute). 'added' rows: the same"
        " quantile through\nthe proxy minus direct. LMB-floor: LM Bridge's cost"
        " over a bare relay. 'translate\n50 KB': LM Bridge translates Anthropic ->"
        " Chat -> Anthropic; floor and direct send\nthe same 49.8 KB to the fake's"
        " /v1/messages (no translation possible there). Per\nchunk: (p50 stream"
        " total via proxy - direct) / 1000; direct column: direct p50 / 1000."
    )


def profiled(
    full: dict[str, Any], home: Path, pid: int, outdir: Path
) -> dict[str, Any]:
    """Run each phase alone with `py-spy record` attached to LM Bridge."""
    outdir.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    results: dict[str, Any] = {}
    for phase in full["phases"]:
        name = phase["name"]
        out = outdir / f"{name}.txt"
        argv = [str(spy), "record", "--pid", str(pid), "--rate", "1000"]
        argv += ["--nonblocking", "--format", "raw", "-o", str(out)]
        rec = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(1.0)  # attached before the load starts
        results.update(procs.run_loadgen({**full, "phases": [phase]}, home))
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=30)
        print(f"profile: {out}", file=sys.stderr)
    return results


# --loop: the floor's loop and LM Bridge's `[server] event_loop`.
LOOPS = {
    "shipped": ("asyncio", "auto"),
    "asyncio": ("asyncio", "asyncio"),
    "uvloop": ("uvloop", "uvloop"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (~40 s)")
    parser.add_argument("--only", help="comma-separated phase names (prints JSON)")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy record LM Bridge during each phase into DIR/<phase>.txt "
        "(collapsed stacks; needs `pip install py-spy`)",
    )
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="shipped",
        help="event loops: shipped (LM Bridge's default against a stock relay on"
        " asyncio), or both on asyncio, or both on uvloop",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run every process at this niceness (e.g. -10, needs root): "
        "steadier figures on a machine busy with other work",
    )
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)  # the servers and the load generator inherit it
    started = time.time()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lmbridge-bench-") as tmp:
        home = Path(tmp)
        fake = procs.start_fake()
        servers = [fake]
        try:
            floor_loop, lmb_loop = LOOPS[args.loop]
            floor = procs.start_floor(fake.url, floor_loop)
            servers.append(floor)
            lmb = procs.start_lmbridge(fake.url, home, lmb_loop)
            servers.append(lmb)
            time.sleep(1.0)  # let the start settle before the idle figure
            mem = {
                "lmbridge_idle_kb": procs.rss_kb(lmb.pid),
                "floor_idle_kb": procs.rss_kb(floor.pid),
            }
            targets = {"direct": fake.url, "floor": floor.url, "lmbridge": lmb.url}
            pids = {"lmbridge": lmb.pid, "floor": floor.pid}
            full = {**plan(args.quick, pids), "targets": targets}
            if args.only:
                names = args.only.split(",")
                full["phases"] = [p for p in full["phases"] if p["name"] in names]
            if args.profile:
                results = profiled(full, home, lmb.pid, args.profile)
            else:
                results = procs.run_loadgen(full, home)
            mem["lmbridge_end_kb"] = procs.rss_kb(lmb.pid)
            mem["floor_end_kb"] = procs.rss_kb(floor.pid)
        finally:
            for server in reversed(servers):
                server.stop()
    if args.only or args.profile:
        print(json.dumps({"memory": mem, **results}, indent=1))
        return 0
    rows = summarise(results, mem)
    load_after = os.getloadavg()
    print(
        f"\nLM Bridge proxy bench ({time.time() - started:.0f} s; event loops:"
        f" floor {floor_loop}, LM Bridge {lmb_loop})\n"
    )
    print_table(rows)
    print(
        f"\nload average (1 min) before {load_before[0]:.2f}, after"
        f" {load_after[0]:.2f} on {os.cpu_count()} CPUs: with other work running,"
        " wall-clock\nfigures are noisy; CPU-per-request rows are not."
    )
    procs.RESULTS.mkdir(exist_ok=True)
    out = procs.RESULTS / time.strftime("proxy-%Y%m%d-%H%M%S.json")
    record = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "quick": args.quick,
        "loops": {"floor": floor_loop, "lmbridge": lmb_loop},
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "request_bytes": {
            "pass_1k": len(payloads.openai_small()),
            "translate_50k": len(payloads.anthropic_claude_code()),
        },
        "rows": rows,
        "memory": mem,
        "raw": results,
    }
    out.write_text(json.dumps(record, indent=1))
    print(f"results: {out.relative_to(procs.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
