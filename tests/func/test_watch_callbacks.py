"""`watch --callbacks-port` runs the callback receiver alongside the watch loop."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
import urllib.request

from tests.func.conftest import Project, spawn_watch

DEADLINE = 30.0


def _status(project: Project, name: str) -> str | None:
    data = json.loads((project.state / "state.json").read_text())
    status: str | None = data["projects"][name]["last_render"].get("status")
    return status


def test_watch_records_a_callback(project: Project) -> None:
    proc = spawn_watch(
        project, "--callbacks-port", "0", env={"RECONCILER_EMULATOR_PRODUCE_DELAY": "3600"}
    )
    out_lines: queue.Queue[str] = queue.Queue()
    err_lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=lambda s=stream, q=sink: [q.put(x) for x in s], daemon=True)
        for stream, sink in ((proc.stdout, out_lines), (proc.stderr, err_lines))
    ]
    for reader in readers:
        reader.start()
    try:
        url = None
        while url is None:
            line = err_lines.get(timeout=DEADLINE)
            if line.startswith("receiving callbacks on "):
                url = line.split(" on ", 1)[1].strip()
        assert out_lines.get(timeout=DEADLINE).startswith("watch #0: initial: 5 created")
        state = json.loads((project.state / "state.json").read_text())
        entry = state["projects"]["brand-sting"]
        assert entry["last_render"]["status"] == "Producing"
        event = {
            "EventTime": "2026-01-01T00:00:05Z",
            "EventType": "ProduceMediaComplete",
            "Status": "success",
            "MediaId": entry["last_render"]["media_id"],
            "ProjectId": entry["project_id"],
        }
        request = urllib.request.Request(
            url,
            data=json.dumps(event).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        deadline = time.monotonic() + DEADLINE
        while _status(project, "brand-sting") != "Produced":
            assert time.monotonic() < deadline, "callback never reached the state"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(DEADLINE)
        for reader in readers:
            reader.join(DEADLINE)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0
