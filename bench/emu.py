"""The emulator server as the benchmarks use it: its own process, real HTTP, a fixed key.

with served(data_dir, latency=0.05, qps_limit=50) as server:
    server.url, server.reset(), server.calls()
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proc import PYTHON, clean_env

ACCESS_KEY = ("LTAIbenchkey00000000", "bench-secret-0000000000000000")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def _get(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(req, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def reset(self) -> None:
        """Forget the call log, so ``calls()`` covers one measured run."""
        self._get("/_emulator/reset", "POST")

    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self._get("/_emulator/calls?limit=1000000")["Calls"]
        return calls


def credentials_env() -> dict[str, str]:
    return clean_env(
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY[0],
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY[1],
        }
    )


@contextmanager
def served(data: Path, *, latency: float = 0.0, qps_limit: float | None = None) -> Iterator[Server]:
    """``reconciler emulator serve`` on a free port until the block ends."""
    cmd = [PYTHON, "-m", "reconciler", "emulator", "serve", "--port", "0", "--data", str(data)]
    cmd += ["--access-key", ":".join(ACCESS_KEY), "--produce-delay", "1"]
    if latency:
        cmd += ["--latency", str(latency)]
    if qps_limit:
        cmd += ["--qps-limit", str(qps_limit)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env()
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        if url is None:
            raise SystemExit("the emulator server did not start")
        yield Server(url, proc)
    finally:
        proc.terminate()
        proc.wait(30)
