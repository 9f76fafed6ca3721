"""Sustained requests/second of the emulator HTTP server under concurrent signed clients.

Starts ``reconciler emulator serve --port 0`` in its own process (so clients and server do not
share a GIL), then runs N client threads, each with its own keep-alive ``httpx.Client``, sending
v3-signed GetEditingProject / SearchEditingProject / UpdateEditingProject requests for a fixed
duration. Prints one JSON line with the totals.

    python bench/emulator_rps.py [--clients 8] [--seconds 10] [--signature v3|v2] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.adapters.emulator.testing import SignedClient  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--signature", choices=("v3", "v2"), default="v3")
    ap.add_argument("--data", help="emulator data directory (default: in memory)")
    args = ap.parse_args()

    cmd = [
        sys.executable,
        "-m",
        "reconciler.cli.emulator_cmd",
        "serve",
        "--port",
        "0",
        "--access-key",
        "bench:bench-secret",
    ]
    if args.data:
        cmd += ["--data", args.data]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = _wait_for_url(server)
        return _run(url, args)
    finally:
        server.terminate()
        server.wait(10)


def _wait_for_url(server: subprocess.Popen[str]) -> str:
    assert server.stdout is not None
    for line in server.stdout:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return found.group(1)
    raise SystemExit("the emulator did not start")


def _run(url: str, args: argparse.Namespace) -> int:
    with httpx.Client(base_url=url) as http:
        setup = SignedClient(http, "bench", "bench-secret", signature=args.signature)
        project = setup.call("AddEditingProject", Title="bench")["Project"]
        assert isinstance(project, dict)
        project_id = str(project["ProjectId"])
    counts = [0] * args.clients
    errors = [0] * args.clients
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    stop = threading.Event()

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            client = SignedClient(http, "bench", "bench-secret", signature=args.signature)
            n = 0
            while not stop.is_set():
                action, params = [
                    ("GetEditingProject", {"ProjectId": project_id}),
                    ("SearchEditingProject", {"Title": "bench", "PageSize": "10"}),
                    ("UpdateEditingProject", {"ProjectId": project_id, "Description": str(n)}),
                ][n % 3]
                t0 = time.perf_counter()
                response = client.request(action, params)
                latencies[i].append(time.perf_counter() - t0)
                n += 1
                counts[i] += 1
                if response.status_code != 200:
                    errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat = sorted(x for per in latencies for x in per)
    total = sum(counts)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "signature": args.signature,
                "seconds": round(elapsed, 2),
                "requests": total,
                "errors": sum(errors),
                "rps": round(total / elapsed, 1),
                "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
                "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None,
                "cpus": os.cpu_count(),
            }
        )
    )
    return 0 if total and not sum(errors) else 1


if __name__ == "__main__":
    sys.exit(main())
