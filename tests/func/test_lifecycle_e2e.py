"""Render lifecycle end to end: apply --wait, wait, status, and callbacks into the state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reconciler.adapters.callbacks import CallbackReceiver, CallbackResult, signature
from reconciler.adapters.state import StateStore
from tests.func.conftest import ACCESS, REPO, Project, start_server

STING_MEDIA = "3f9e0d5c7a1f2e4d6c5b8a9f0e1d2c3b"  # brand-sting's first clip
KEY = "callback-private-key-0000"


def projects(p: Project) -> dict[str, dict[str, Any]]:
    return StateStore(p.state).peek().projects


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.02)


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded emulator finishes renders after 0.2 s; brand-sting's media is broken."""
    monkeypatch.setenv("RECONCILER_EMULATOR_PRODUCE_DELAY", "0.2")
    monkeypatch.setenv("RECONCILER_EMULATOR_FAIL_MEDIA_IDS", STING_MEDIA)


def test_apply_wait_until_produced_and_failed(
    project: Project, fast: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert project.run("apply", "--wait", "--interval", "0.05") == 1
    out = capsys.readouterr()
    assert "Wait complete: 4 produced, 1 failed (brand-sting)." in out.out
    assert "1 failed (brand-sting)" in out.err
    state = projects(project)
    sting = state["brand-sting"]["last_render"]
    assert sting["status"] == "ProduceFailed" and sting["finished_at"]
    promo = state["spring-promo"]["last_render"]
    assert promo["status"] == "Produced" and promo["finished_at"]
    assert state["spring-promo"]["history"][-1]["status"] == "Produced"

    assert project.run("status") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "ProduceFailed" in lines["brand-sting"] and sting["media_id"] in lines["brand-sting"]
    assert "Produced" in lines["spring-promo"] and promo["media_id"] in lines["spring-promo"]

    # Nothing left in flight: wait returns at once without asking VOD anything.
    before = len(project.calls())
    assert project.run("wait") == 0
    assert "Nothing to wait for" in capsys.readouterr().out
    assert len(project.calls()) == before


def test_wait_command_for_named_projects(
    project: Project, fast: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert project.run("apply", "--only", "spring-promo", "--only", "weekly-recap") == 0
    assert projects(project)["spring-promo"]["last_render"]["status"] == "Producing"
    capsys.readouterr()
    assert project.run("wait", "spring-promo", "--interval", "0.05", "--output", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"]) for r in doc["results"]] == [("spring-promo", "Produced")]
    state = projects(project)
    assert state["spring-promo"]["last_render"]["status"] == "Produced"
    assert state["weekly-recap"]["last_render"]["status"] == "Producing"  # not asked for
    assert project.run("wait", "no-such-project") == 1
    assert "no project named 'no-such-project'" in capsys.readouterr().err


def test_wait_timeout_says_which(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECONCILER_EMULATOR_PRODUCE_DELAY", "600")
    assert project.run("apply", "--only", "brand-sting") == 0
    started = time.monotonic()
    assert project.run("wait", "--timeout", "0.3", "--interval", "0.05") == 1
    assert time.monotonic() - started < 5
    out = capsys.readouterr()
    assert "Timeout       brand-sting" in out.out and "still Producing" in out.out
    assert "1 timed out (brand-sting)" in out.err
    assert projects(project)["brand-sting"]["last_render"]["status"] == "Producing"


def test_status_history_and_refresh(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECONCILER_EMULATOR_PRODUCE_DELAY", "0")
    monkeypatch.setenv("RECONCILER_HISTORY", "2")
    for _ in range(3):
        assert project.run("apply", "--only", "brand-sting", "--force", "brand-sting") == 0
    entry = projects(project)["brand-sting"]
    assert len(entry["history"]) == 2  # N = RECONCILER_HISTORY
    capsys.readouterr()

    assert project.run("status", "brand-sting", "--output", "json") == 0
    (row,) = json.loads(capsys.readouterr().out)["projects"]
    assert row["status"] == "Producing" and row["media_id"] == entry["last_render"]["media_id"]
    assert [h["media_id"] for h in row["history"]] == [
        h["media_id"] for h in reversed(entry["history"])
    ]
    assert row["render_hash"] == entry["hashes"]["render"]

    # --refresh asks VOD and records the final status it learns.
    assert project.run("status", "--refresh") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("REMOTE")
    sting = next(line for line in out.splitlines() if line.startswith("brand-sting"))
    assert sting.split()[-1] == "Produced" and " Produced " in sting
    assert "history:" in out
    assert projects(project)["brand-sting"]["last_render"]["status"] == "Produced"


# --------------------------------------------------------------------------- callbacks


@pytest.fixture
def receiver(project: Project) -> Iterator[tuple[CallbackReceiver, list[CallbackResult]]]:
    results: list[CallbackResult] = []
    rec = CallbackReceiver(project.state, private_keys=[KEY], on_result=results.append)
    with rec:
        yield rec, results


def write_callback_manifest(p: Project, url: str) -> None:
    (p.manifests / "callback-demo.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: EditingProject\nmetadata: {name: callback-demo}\n"
        "spec:\n  title: Callback demo\n  timeline:\n    VideoTracks:\n"
        "      - VideoTrackClips: [{MediaId: 0123456789abcdef0123456789abcdef, Out: 3}]\n"
        f"  userData: {{MessageCallback: {{CallbackURL: '{url}', CallbackType: http}}}}\n"
    )


def test_emulator_callback_updates_the_state(
    project: Project,
    receiver: tuple[CallbackReceiver, list[CallbackResult]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec, results = receiver
    server = start_server(project.root / "emu", produce_delay=0.2, callback_private_key=KEY)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS[0])
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS[1])
    try:
        p = Project(project.root, "v3", server)
        write_callback_manifest(p, rec.url + "vod/events")
        assert p.run("apply", "--only", "callback-demo") == 0
        media = projects(p)["callback-demo"]["last_render"]["media_id"]
        eventually(lambda: bool(results))
        assert results[0].outcome == "recorded" and results[0].name == "callback-demo"
        last = projects(p)["callback-demo"]["last_render"]
        assert (last["media_id"], last["status"]) == (media, "Produced")
        (event,) = server.emulator.events()
        assert event.delivery == "delivered" and event.callback_url == rec.url + "vod/events"
        assert not p.calls("GetEditingProject")  # learned from the callback, not by polling
    finally:
        server.stop()


def post(url: str, event: dict[str, Any], *, key: str = KEY, ts: str | None = None) -> int:
    ts = ts or str(int(time.time()))
    headers = {"X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": signature(url, ts, key)}
    return httpx.post(url, content=json.dumps(event), headers=headers, timeout=5).status_code


def test_signed_post_bad_signature_and_unknown_media(
    project: Project,
    receiver: tuple[CallbackReceiver, list[CallbackResult]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec, results = receiver
    monkeypatch.setenv("RECONCILER_EMULATOR_PRODUCE_DELAY", "600")
    assert project.run("apply", "--only", "brand-sting") == 0
    media = projects(project)["brand-sting"]["last_render"]["media_id"]
    event = {
        "EventTime": "2026-01-01T00:00:05Z",
        "EventType": "ProduceMediaComplete",
        "Status": "fail",
        "MediaId": media,
        "ProjectId": projects(project)["brand-sting"]["project_id"],
        "ErrorCode": "InvalidParameter.ResourceContentBad",
        "ErrorMessage": "The resource operated InputFile is bad",
    }
    assert post(rec.url, event, key="wrong-key") == 401
    assert post(rec.url, event, ts=str(int(time.time()) - 3600)) == 401  # stale
    assert rec.drain(5) and results == []
    assert projects(project)["brand-sting"]["last_render"]["status"] == "Producing"

    assert post(rec.url, event) == 200
    assert post(rec.url, {**event, "MediaId": "not-ours"}) == 200  # acknowledged, ignored
    assert rec.drain(5)
    assert [(r.name, r.outcome) for r in results] == [
        ("brand-sting", "recorded"),
        (None, "unknown"),
    ]
    last = projects(project)["brand-sting"]["last_render"]
    assert last["status"] == "ProduceFailed" and last["finished_at"] == "2026-01-01T00:00:05Z"
    assert last["error_code"] == "InvalidParameter.ResourceContentBad"


def test_callbacks_serve_cli(project: Project) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RECONCILER_CALLBACK_PRIVATE_KEY": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "callbacks", "serve", "--port", "0"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "callback receiver listening on http://127.0.0.1:" in line
        assert "signature check on" in line and KEY not in line
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        event = {"EventType": "ProduceMediaComplete", "Status": "success", "MediaId": "m0"}
        assert post(url, event, key="nope") == 401
        assert post(url, event) == 200
        assert "m0: no project's last render" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert KEY not in out + err
