"""Soak: 10,000 mixed requests at concurrency 50 through LM Bridge.

Separate processes on 127.0.0.1: the fake upstream (fake_upstream_server.py),
LM Bridge (`python -m lmbridge serve`) and the load generator (loadgen.py).
The mix: OpenAI Chat pass-through (JSON and streams) and Anthropic requests
translated to Chat (the 50 KB Claude Code-shaped body as JSON and as a
stream, small streams paced 1 ms per frame so they overlap). Every answer is
checked for completeness (JSON shape; a stream's last event).

Pass: no failed request, and LM Bridge's resident memory (VmRSS) after the
run, settled, within 20 MB of the baseline taken after a 500-request
warm-up. Exits 1 otherwise.

Run: python bench/bench_soak.py [--requests N]   (part of `make bench`, ~1 min)
Results: printed, and written to bench/results/soak-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import payloads
import procs

MAX_GROWTH_MB = 20.0
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


def mix() -> list[dict[str, Any]]:
    kinds = [
        ("openai", CHAT, payloads.openai_small(), 3),
        ("openai-stream", CHAT, payloads.openai_small(stream=True), 3),
        ("anthropic", MESSAGES, payloads.anthropic_claude_code(), 2),
        (
            "anthropic-stream",
            MESSAGES,
            payloads.anthropic_claude_code(stream=True),
            1,
        ),
        (
            "anthropic-stream",
            MESSAGES,
            payloads.anthropic_small("claude-chunks-20-delay-1", stream=True),
            1,
        ),
    ]
    return [
        {"kind": k, "path": p, "body": procs.b64(b), "weight": w}
        for k, p, b, w in kinds
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=500)
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
    with tempfile.TemporaryDirectory(prefix="lmbridge-soak-") as tmp:
        home = Path(tmp)
        fake = procs.start_fake()
        servers = [fake]
        try:
            lmb = procs.start_lmbridge(fake.url, home)
            servers.append(lmb)
            phase = {
                "kind": "soak",
                "name": "soak",
                "target": "lmbridge",
                "pid": lmb.pid,
                "mix": mix(),
                "concurrency": args.concurrency,
                "warmup": args.warmup,
                "requests": args.requests,
                "settle_s": 2.0,
            }
            plan = {"targets": {"lmbridge": lmb.url}, "phases": [phase]}
            result = procs.run_loadgen(plan, home)["soak"]
            alive = lmb.proc.poll() is None
        finally:
            for server in reversed(servers):
                server.stop()
        log = (home / "lmbridge.stderr").read_text(errors="replace").splitlines()
    # LM Bridge logs at WARNING and above: any line there is worth a look.
    errors = [line for line in log if "ERROR" in line or "Traceback" in line]
    mb = {k: v / 1024 for k, v in result.items() if k.endswith("_kb")}
    growth = mb["rss_after_settle_kb"] - mb["rss_baseline_kb"]
    ok_fail = result["failed"] == 0 and alive and not errors
    ok_mem = growth < MAX_GROWTH_MB
    print(f"\nLM Bridge soak ({time.time() - started:.0f} s)\n")
    print(
        f"requests          {result['requests']:,} at concurrency"
        f" {args.concurrency} in {result['seconds']:.1f} s ({result['rps']:.0f} req/s)"
    )
    print(
        "mix               "
        + ", ".join(f"{k} {n}" for k, n in result["per_kind"].items())
    )
    print(
        f"failed            {result['failed']}"
        f"{'' if alive else ' (LM Bridge died)'}   target 0"
        f"  {'PASS' if ok_fail else 'FAIL'}"
    )
    for reason, count in sorted(result["failures"].items()):
        print(f"    {count:6d}  {reason}")
    print(f"error log lines   {len(errors)} (LM Bridge's stderr)")
    for line in errors[:5]:
        print(f"    {line}")
    print(f"RSS at start      {mb['rss_start_kb']:.1f} MB")
    print(
        f"RSS baseline      {mb['rss_baseline_kb']:.1f} MB (after {args.warmup} warm-up requests, settled)"
    )
    print(f"RSS peak          {mb['rss_peak_kb']:.1f} MB (during the run)")
    print(f"RSS after load    {mb['rss_after_load_kb']:.1f} MB")
    print(f"RSS settled       {mb['rss_after_settle_kb']:.1f} MB")
    print(
        f"growth            {growth:+.1f} MB   target < {MAX_GROWTH_MB:.0f} MB"
        f"  {'PASS' if ok_mem else 'FAIL'}"
    )
    load = os.getloadavg()[0]
    print(f"load average      {load:.2f} on {os.cpu_count()} CPUs")
    procs.RESULTS.mkdir(exist_ok=True)
    out = procs.RESULTS / time.strftime("soak-%Y%m%d-%H%M%S.json")
    out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "args": vars(args),
                "growth_mb": growth,
                "ok": ok_fail and ok_mem,
                "loadavg": load,
                "error_log_lines": errors[:50],
                **result,
            },
            indent=1,
        )
    )
    print(f"results: {out.relative_to(procs.ROOT)}")
    return 0 if ok_fail and ok_mem else 1


if __name__ == "__main__":
    sys.exit(main())
