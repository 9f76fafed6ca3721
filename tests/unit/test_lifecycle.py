"""Waiting for renders with an injected clock, the callback signature, and state recording."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.callbacks import (
    CallbackReceiver,
    Produced,
    ProducedRecorder,
    signature,
    verify,
)
from reconciler.adapters.state import StateStore
from reconciler.core.canonical import spec_hashes
from reconciler.core.state import State, apply_event
from reconciler.engine.lifecycle import Backoff, Target, Waiter, waiting_targets
from reconciler.errors import VodApiError


@dataclass
class P:
    status: str | None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedVod:
    """GetEditingProject answers from a per-project script; the last answer repeats."""

    def __init__(self, script: dict[str, list[str | Exception]]) -> None:
        self.script = script
        self.calls: list[str] = []

    def get_editing_project(self, project_id: str) -> P:
        self.calls.append(project_id)
        answers = self.script[project_id]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return P(answer)


def targets(*names: str) -> list[Target]:
    return [Target(n, f"p-{n}", f"m-{n}") for n in names]


def test_backoff_grows_to_the_cap() -> None:
    delays = Backoff(initial=1, maximum=10).delays()
    assert [next(delays) for _ in range(7)] == [1, 2, 4, 8, 10, 10, 10]


def test_wait_until_final_reports_each_as_soon_as_known() -> None:
    clock = Clock()
    vod = ScriptedVod(
        {
            "p-a": ["Producing", "Producing", "Produced"],
            "p-b": ["Producing", "ProduceFailed"],
        }
    )
    batches: list[list[str]] = []
    waiter = Waiter(
        vod,  # type: ignore[arg-type]
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        now=lambda: f"t{clock.now:g}",
        parallelism=1,
        on_finished=lambda rs: batches.append([f"{r.target.name}:{r.status}" for r in rs]),
    )
    results = waiter.wait(targets("a", "b"), timeout=60)
    assert [(r.target.name, r.status, r.at) for r in results] == [
        ("a", "Produced", "t3"),
        ("b", "ProduceFailed", "t1"),
    ]
    assert batches == [["b:ProduceFailed"], ["a:Produced"]]
    assert clock.sleeps == [1, 2]  # backoff between polls, no fixed sleeps
    assert vod.calls == ["p-a", "p-b", "p-a", "p-b", "p-a"]
    produced = results[1].produced()
    assert produced == Produced("m-b", "ProduceFailed", "t1", name="b")


def test_timeout_is_reported_with_the_last_status_seen() -> None:
    clock = Clock()
    vod = ScriptedVod({"p-a": ["Producing"], "p-b": ["Normal"]})
    waiter = Waiter(vod, monotonic=clock.monotonic, sleep=clock.sleep)  # type: ignore[arg-type]
    results = waiter.wait(targets("a", "b"), timeout=5)
    assert [r.status for r in results] == ["Timeout", "Timeout"]
    assert clock.sleeps == [1, 2, 2]  # the last sleep is cut to the deadline
    assert results[1].last_seen == "Normal" and "still Normal" in results[1].describe()
    assert not any(r.ok or r.final for r in results)


def test_deleted_and_unreadable_projects_stop_being_polled() -> None:
    clock = Clock()
    vod = ScriptedVod(
        {
            "p-a": [VodApiError("gone", action="G", code="InvalidEditingProject.NotFound")],
            "p-b": [VodApiError("no", action="G", code="Forbidden.RAM")],
        }
    )
    waiter = Waiter(vod, monotonic=clock.monotonic, sleep=clock.sleep)  # type: ignore[arg-type]
    results = waiter.wait(targets("a", "b"), timeout=None)
    assert [r.status for r in results] == ["Deleted", "Error"]
    assert clock.sleeps == [] and len(vod.calls) == 2


def rendered(name: str, media_id: str | None) -> dict[str, Any]:
    s = {"title": "T", "timeline": {"VideoTracks": []}}
    return {
        "type": "rendered",
        "name": name,
        "at": "2026-01-01T00:00:00Z",
        "project_id": f"p-{name}",
        "media_id": media_id,
        "spec": s,
        "hashes": spec_hashes(s).as_dict(),
    }


def test_waiting_targets_are_renders_in_flight() -> None:
    state = State(lineage="L")
    for name, media in (("a", "m1"), ("b", None), ("c", "m3")):
        apply_event(state, rendered(name, media))
    done = {"type": "produced", "name": "c", "media_id": "m3", "status": "Produced", "at": "t"}
    apply_event(state, done)
    assert [(t.name, t.media_id) for t in waiting_targets(state)] == [("a", "m1"), ("b", None)]
    assert [t.name for t in waiting_targets(state, ["b", "c"])] == ["b"]


def make_state(directory: Path) -> None:
    store = StateStore(directory)
    store.load()
    store.record(rendered("a", "m1"))
    store.record(rendered("b", "m2"))
    store.record(rendered("a", "m9"))  # a newer render of a: m1 is no longer its last
    store.snapshot()
    store.close()


def test_recorder_records_only_the_last_render_and_is_idempotent(tmp_path: Path) -> None:
    make_state(tmp_path)
    recorder = ProducedRecorder(tmp_path, history=5)
    outcomes = recorder.record(
        [
            Produced("m2", "Produced", "2026-01-01T00:01:00Z"),  # found by MediaId
            Produced("m1", "Produced", "2026-01-01T00:01:00Z"),  # superseded render
            Produced("zzz", "Produced", "2026-01-01T00:01:00Z"),  # nobody's
            Produced("m9", "ProduceFailed", "2026-01-01T00:02:00Z", "E.Bad", name="a"),
        ]
    )
    assert outcomes == [("b", "recorded"), (None, "unknown"), (None, "unknown"), ("a", "recorded")]
    projects = StateStore(tmp_path).peek().projects
    assert projects["b"]["last_render"]["status"] == "Produced"
    assert projects["b"]["last_render"]["finished_at"] == "2026-01-01T00:01:00Z"
    assert projects["a"]["last_render"]["error_code"] == "E.Bad"
    assert [h["status"] for h in projects["a"]["history"]] == ["Producing", "ProduceFailed"]
    again = recorder.record([Produced("m2", "Produced", "2026-01-01T00:09:00Z")])
    assert again == [("b", "unchanged")]


def test_recorder_writes_nothing_for_unknown_media(tmp_path: Path) -> None:
    assert ProducedRecorder(tmp_path).record([Produced("m", "Produced", "t")]) == [
        (None, "unknown")
    ]
    assert not (tmp_path / "state.json").exists()


def test_signature_is_md5_of_url_timestamp_key() -> None:
    url, ts, key = "http://h:1/cb", "1767225600", "k3y"
    assert signature(url, ts, key) == hashlib.md5(b"http://h:1/cb|1767225600|k3y").hexdigest()
    good = signature(url, ts, key)
    ok = {"now": 1767225600.0, "freshness": 300.0}
    assert verify([url], ts, good, ["old", key], **ok) is None  # key rotation: either key
    assert verify([url], ts, good.upper(), [key], **ok) is None
    assert verify([url], ts, good, ["other"], **ok) == "X-VOD-SIGNATURE does not match"
    assert verify(["http://h:1/x"], ts, good, [key], **ok) == "X-VOD-SIGNATURE does not match"
    assert "away from now" in str(verify([url], ts, good, [key], now=1767226000.0, freshness=300))
    assert "missing" in str(verify([url], None, good, [key], **ok))
    assert "not a Unix time" in str(verify([url], "12ab", good, [key], **ok))
    assert "not a Unix time" in str(verify([url], "\u00b2", good, [key], **ok))
    assert verify([url], ts, "s\u00efg", [key], **ok) == "X-VOD-SIGNATURE does not match"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b"{}", 401),
        ({"X-VOD-TIMESTAMP": "1000", "X-VOD-SIGNATURE": "bad"}, b"{}", 401),
        ("signed", b"not json", 400),
        ("signed", json.dumps({"EventType": "TranscodeComplete"}).encode(), 200),
        ("signed", json.dumps({"EventType": "ProduceMediaComplete"}).encode(), 400),
    ],
)
def test_receiver_checks_before_it_queues(
    tmp_path: Path, headers: Any, body: bytes, status: int
) -> None:
    receiver = CallbackReceiver(tmp_path, private_keys=["k"], clock=lambda: 1000.0)
    if headers == "signed":
        sig = signature("http://127.0.0.1:9/", "1000", "k")
        headers = {"Host": "127.0.0.1:9", "X-VOD-TIMESTAMP": "1000", "X-VOD-SIGNATURE": sig}
    code, _ = receiver.receive("/", headers, body)
    assert code == status
