"""The load generator for bench_proxy.py and soak.py, run as its own process.

Reads a plan (JSON: targets, phases) from the file named on the command line,
runs the phases with one aiohttp client session, and prints the results as
one JSON object on stdout (progress goes to stderr). Phases:

- `sequential`: one request at a time, targets interleaved in blocks so
  drift hits every target alike; per target the total time and, for
  streams, the time until the first token (the first chunk holding
  `marker`), as percentiles in milliseconds.
- `concurrent`: `concurrency` workers, each looping requests, for
  `seconds` after a warm-up; completed requests per second and latency
  percentiles. Slots alternate between targets when given `rounds`.
- `streams`: `count` streams opened at once; the resident memory of the
  target's process (VmRSS) sampled while they run.
- `soak`: a mix of request kinds at a concurrency, each answer checked for
  completeness; memory before (after a warm-up, settled) and after.

Run by the orchestrators only: python bench/loadgen.py PLAN.json
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import random
import sys
import time
from typing import Any

import aiohttp

HEADERS = {
    "Content-Type": "application/json",
    "anthropic-version": "2023-06-01",
    "User-Agent": "lmbridge-bench/1",
}


def log(msg: str) -> None:
    print(f"  [loadgen] {msg}", file=sys.stderr, flush=True)


def rss_kb(pid: int) -> int:
    """Resident set size of `pid` in KiB (VmRSS from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ns(pid: int) -> int:
    """CPU time `pid` has run, all its threads (LM Bridge's database writer
    too), in nanoseconds (/proc/PID/task/*/schedstat; /proc/PID/schedstat
    is the main thread's alone). A thread that ended meanwhile is missed."""
    total = 0
    for task in os.scandir(f"/proc/{pid}/task"):
        try:
            with open(f"{task.path}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # the thread ended between the two looks
            pass
    return total


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min of `samples` (seconds) in milliseconds."""
    if not samples:
        return {}
    s = sorted(samples)
    n = len(s)

    def at(q: float) -> float:
        return s[min(n - 1, round(q * (n - 1)))] * 1000

    return {
        "n": n,
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "mean": sum(s) / n * 1000,
        "min": s[0] * 1000,
    }


class Call:
    """One request's observations."""

    __slots__ = ("body", "nbytes", "reads", "status", "total", "ttft")

    def __init__(self) -> None:
        self.status = 0
        self.ttft: float | None = None
        self.total = 0.0
        self.nbytes = 0
        self.reads = 0
        self.body = b""


async def call(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    stream: bool,
    marker: bytes | None = None,
    keep: bool = False,
) -> Call:
    """POST `body`; time the whole answer and, with `marker`, its first token."""
    out = Call()
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=HEADERS) as resp:
        out.status = resp.status
        if not stream:
            data = await resp.read()
            out.total = time.perf_counter() - t0
            out.nbytes, out.reads = len(data), 1
            if keep:
                out.body = data
            return out
        tail = b""
        parts = []
        async for chunk in resp.content.iter_any():
            if out.ttft is None and marker is not None:
                if marker in tail + chunk:
                    out.ttft = time.perf_counter() - t0
                else:
                    tail = chunk[-len(marker) :]
            out.reads += 1
            out.nbytes += len(chunk)
            if keep:
                parts.append(chunk)
        out.total = time.perf_counter() - t0
        out.body = b"".join(parts)
    return out


def _body(phase: dict[str, Any]) -> bytes:
    return base64.b64decode(phase["body"])


async def sequential(
    session: aiohttp.ClientSession, targets: dict[str, str], phase: dict[str, Any]
) -> dict[str, Any]:
    marker = phase.get("marker")
    marker_b = marker.encode() if marker else None
    names = phase["targets"]
    # What each name sends where: the phase's path/body/stream to the target
    # of that name, unless `variants` names another target, path or body.
    sends: dict[str, tuple[str, bytes, bool]] = {}
    for t in names:
        v = {**phase, **phase.get("variants", {}).get(t, {})}
        url = targets[v.get("target", t)] + v["path"]
        sends[t] = (url, base64.b64decode(v["body"]), v.get("stream", False))
    n, warmup, block = phase["n"], phase.get("warmup", 100), phase.get("block", 10)
    totals: dict[str, list[float]] = {t: [] for t in names}
    ttfts: dict[str, list[float]] = {t: [] for t in names}
    reads: dict[str, list[int]] = {t: [] for t in names}
    sizes: dict[str, int] = {}
    pids = {t: p for t, p in phase.get("pids", {}).items() if t in names}
    cpu0 = {t: cpu_ns(p) for t, p in pids.items()}
    for t in names:
        url, body, stream = sends[t]
        for _ in range(warmup):
            await call(session, url, body, stream=stream, marker=marker_b)
    gc.collect()
    gc.disable()
    try:
        rounds = (n + block - 1) // block
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for t in order:
                url, body, stream = sends[t]
                for _ in range(block):
                    c = await call(session, url, body, stream=stream, marker=marker_b)
                    if c.status != 200:
                        raise RuntimeError(f"{t} {url}: HTTP {c.status}")
                    totals[t].append(c.total)
                    reads[t].append(c.reads)
                    sizes[t] = c.nbytes
                    if c.ttft is not None:
                        ttfts[t].append(c.ttft)
    finally:
        gc.enable()
    cpu1 = {t: cpu_ns(p) for t, p in pids.items()}
    result: dict[str, Any] = {}
    for t in names:
        result[t] = {
            "total": percentiles(totals[t]),
            "reads_mean": sum(reads[t]) / len(reads[t]),
            "response_bytes": sizes.get(t, 0),
        }
        if t in pids:
            # Every request to t (warm-up included) ran on t's process alone.
            sent = warmup + len(totals[t])
            result[t]["cpu_us_per_request"] = (cpu1[t] - cpu0[t]) / sent / 1000
        if ttfts[t]:
            result[t]["ttft"] = percentiles(ttfts[t])
    return result


async def _load(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    concurrency: int,
    seconds: float,
    stream: bool,
) -> tuple[int, int, list[float], int]:
    """Workers loop requests for `seconds`.

    (completed in time, errors, their latencies, all completed)."""
    latencies: list[float] = []
    errors = 0
    finished = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors, finished
        while time.perf_counter() < deadline:
            try:
                c = await call(session, url, body, stream=stream)
            except aiohttp.ClientError:
                errors += 1
                continue
            finished += 1
            if c.status != 200:
                errors += 1
            elif time.perf_counter() <= deadline:
                latencies.append(c.total)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    # Requests still in flight at the deadline finish and are not counted.
    return len(latencies), errors, latencies, finished


async def concurrent(
    session: aiohttp.ClientSession, targets: dict[str, str], phase: dict[str, Any]
) -> dict[str, Any]:
    body, path = _body(phase), phase["path"]
    conc, seconds = phase["concurrency"], phase["seconds"]
    stream = phase.get("stream", False)
    pids = phase.get("pids", {})
    result: dict[str, Any] = {}
    acc: dict[str, list[Any]] = {}
    for t in phase["targets"]:
        await _load(session, targets[t] + path, body, conc, phase["warmup_s"], stream)
    for _ in range(phase.get("rounds", 1)):
        for t in phase["targets"]:
            gc.collect()
            c0 = cpu_ns(pids[t]) if t in pids else 0
            done, errs, lat, finished = await _load(
                session, targets[t] + path, body, conc, seconds, stream
            )
            cpu = cpu_ns(pids[t]) - c0 if t in pids else 0
            a = acc.setdefault(t, [0, 0, [], 0.0, 0, 0])
            for i, v in enumerate((done, errs, lat, seconds, cpu, finished)):
                a[i] += v
            log(f"concurrency {conc} {t}: {done / seconds:.0f} req/s")
    for t, (done, errs, lat, secs, cpu, finished) in acc.items():
        result[t] = {
            "rps": done / secs,
            "errors": errs,
            "latency": percentiles(lat),
            "seconds": secs,
        }
        if t in pids:
            result[t]["cpu_us_per_request"] = cpu / finished / 1000
    return result


async def streams(
    session: aiohttp.ClientSession, targets: dict[str, str], phase: dict[str, Any]
) -> dict[str, Any]:
    """Open `count` streams at once; sample the target process's RSS."""
    result: dict[str, Any] = {}
    bodies = [(p["path"], base64.b64decode(p["body"])) for p in phase["mix"]]
    for t in phase["targets"]:
        pid = phase["pids"][t]
        before = rss_kb(pid)
        samples: list[int] = []
        done = asyncio.Event()

        async def sampler(
            pid: int = pid, samples: list[int] = samples, done: asyncio.Event = done
        ) -> None:
            while not done.is_set():
                samples.append(rss_kb(pid))
                await asyncio.sleep(0.02)

        sampling = asyncio.create_task(sampler())
        calls = [
            call(
                session,
                targets[t] + bodies[i % len(bodies)][0],
                bodies[i % len(bodies)][1],
                stream=True,
            )
            for i in range(phase["count"])
        ]
        t0 = time.perf_counter()
        out = await asyncio.gather(*calls, return_exceptions=True)
        took = time.perf_counter() - t0
        done.set()
        await sampling
        failed = sum(1 for c in out if not isinstance(c, Call) or c.status != 200)
        result[t] = {
            "rss_before_kb": before,
            "rss_peak_kb": max(samples),
            "rss_after_kb": rss_kb(pid),
            "seconds": took,
            "failed": failed,
        }
        log(f"{phase['count']} streams via {t}: peak RSS {max(samples) / 1024:.1f} MB")
    return result


def check(kind: str, c: Call) -> str | None:
    """Why answer `c` of a request of `kind` is not complete, or None."""
    if c.status != 200:
        return f"HTTP {c.status}"
    try:
        if kind == "openai":
            content = json.loads(c.body)["choices"][0]["message"]["content"]
            return None if content else "empty content"
        if kind == "anthropic":
            data = json.loads(c.body)
            ok = data.get("type") == "message" and data["content"][0]["text"]
            return None if ok else "no text"
    except (ValueError, LookupError, TypeError) as exc:
        return f"bad JSON ({exc})"
    if kind == "openai-stream":
        if not c.body.endswith(b"data: [DONE]\n\n") or b'"content":"tok' not in c.body:
            return "stream incomplete"
        return None
    if kind == "anthropic-stream":
        if b"event: message_stop" not in c.body or b"text_delta" not in c.body:
            return "stream incomplete"
        return None
    return f"unknown kind {kind}"


async def soak(
    session: aiohttp.ClientSession, targets: dict[str, str], phase: dict[str, Any]
) -> dict[str, Any]:
    url = targets[phase["target"]]
    pid = phase["pid"]
    mix = [
        (m["kind"], m["path"], base64.b64decode(m["body"]), m["weight"])
        for m in phase["mix"]
    ]
    rng = random.Random(1)
    kinds = [m for m in mix for _ in range(m[3])]
    conc = phase["concurrency"]
    failures: dict[str, int] = {}
    per_kind: dict[str, int] = {}

    async def run(count: int) -> float:
        queue = [rng.choice(kinds) for _ in range(count)]
        queue.reverse()

        async def worker() -> None:
            while queue:
                kind, path, body, _ = queue.pop()
                stream = kind.endswith("stream")
                try:
                    c = await call(session, url + path, body, stream=stream, keep=True)
                    why = check(kind, c)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    why = f"{type(exc).__name__}: {exc}"
                per_kind[kind] = per_kind.get(kind, 0) + 1
                if why is not None:
                    key = f"{kind}: {why}"
                    failures[key] = failures.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return time.perf_counter() - t0

    rss_start = rss_kb(pid)
    await run(phase["warmup"])
    await asyncio.sleep(phase.get("settle_s", 2.0))
    baseline = rss_kb(pid)
    per_kind.clear()
    log(f"soak: warm-up done, baseline RSS {baseline / 1024:.1f} MB")
    samples: list[int] = []
    stop = asyncio.Event()

    async def sampler() -> None:
        while not stop.is_set():
            samples.append(rss_kb(pid))
            await asyncio.sleep(0.1)

        # A last sample when the load ends.
        samples.append(rss_kb(pid))

    sampling = asyncio.create_task(sampler())
    took = await run(phase["requests"])
    stop.set()
    await sampling
    after_load = rss_kb(pid)
    await asyncio.sleep(phase.get("settle_s", 2.0))
    settled = rss_kb(pid)
    return {
        "requests": phase["requests"],
        "per_kind": per_kind,
        "failures": failures,
        "failed": sum(failures.values()),
        "seconds": took,
        "rps": phase["requests"] / took,
        "rss_start_kb": rss_start,
        "rss_baseline_kb": baseline,
        "rss_peak_kb": max(samples),
        "rss_after_load_kb": after_load,
        "rss_after_settle_kb": settled,
    }


PHASES = {
    "sequential": sequential,
    "concurrent": concurrent,
    "streams": streams,
    "soak": soak,
}


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for phase in plan["phases"]:
            log(f"phase {phase['name']}")
            t0 = time.perf_counter()
            run = PHASES[phase["kind"]]
            results[phase["name"]] = await run(session, plan["targets"], phase)
            results[phase["name"]]["_phase_seconds"] = time.perf_counter() - t0
    return results


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    print(json.dumps(asyncio.run(main(plan))), flush=True)
