"""Ambiguous failures (issue 6.2): a call that may or may not have reached VOD is never paid twice.

The emulator either processes a ProduceEditingProjectVideo / AddEditingProject and then drops
the connection (``drop_rate``), or loses the request before processing it (``Lossy``, as when
the network dies mid-send). Either way ``apply`` exits 1 and says the call may have taken
effect; the next run asks VOD what happened before it submits anything again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.emulator import Emulator, EmulatorConfig, EmulatorServer
from reconciler.adapters.emulator.auth import Headers, Request
from reconciler.adapters.emulator.service import EmulatorResponse
from reconciler.adapters.state import StateStore
from reconciler.adapters.vod.client import VodClient
from reconciler.adapters.vod.credentials import Credentials
from reconciler.core.canonical import canonical_json
from tests.func.conftest import ACCESS, Project

PRODUCE = "ProduceEditingProjectVideo"
ADD = "AddEditingProject"
EXAMPLES = 5


class Lossy(Emulator):
    """Loses requests for the ``lose`` actions before processing them (nothing happens)."""

    lose: frozenset[str] = frozenset()

    def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: Headers,
        body: bytes = b"",
    ) -> EmulatorResponse:
        if Request.build(method, path, query, headers, body).action in self.lose:
            return EmulatorResponse(0, [], b"", drop=True)
        return super().handle(method, path, query, headers, body)


Serve = Callable[..., Project]


@pytest.fixture
def serve(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """``serve(lose=(...), **faults)``: (re)start the emulator server over one data directory."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS[0])
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS[1])
    running: list[EmulatorServer] = []

    def stop() -> None:
        while running:
            server = running.pop()
            server.stop()
            server.emulator.close()

    def start(lose: Sequence[str] = (), **faults: Any) -> Project:
        stop()
        emulator = Lossy(project.root / "vod", dict([ACCESS]), EmulatorConfig(**faults))
        emulator.lose = frozenset(lose)
        running.append(EmulatorServer(emulator).start())
        return Project(project.root, "v3", running[-1])

    yield start
    stop()


def _state(p: Project) -> dict[str, dict[str, Any]]:
    return StateStore(p.state).load().projects


def _renders(p: Project) -> Counter[tuple[str, str]]:
    """Successful ProduceEditingProjectVideo calls per (ProjectId, what was rendered)."""
    out: Counter[tuple[str, str]] = Counter()
    for call in p.calls(PRODUCE):
        if call.status == 200:
            sent = {k: json.loads(call.params.get(k) or "null") for k in _RENDERED}
            out[(call.params["ProjectId"], canonical_json(sent))] += 1
    return out


_RENDERED = ("Timeline", "ProduceConfig", "MediaMetadata")


def _no_orphans(p: Project) -> None:
    known = {e.get("project_id") for e in _state(p).values()}
    remote = {x.project_id for x in p.server.emulator.projects()}
    assert remote <= known, f"orphans: {remote - known}"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_dropped_produce_is_recorded_not_paid_twice(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    p = serve(drop_rate=1.0, drop_actions=(PRODUCE,))
    assert p.run("apply") == 1
    err = capsys.readouterr().err
    assert err.count("failed: ") == EXAMPLES
    assert "may have taken effect" in err and "nothing is paid twice" in err
    assert all(e.get("pending", {}).get("op") == "render" for e in _state(p).values())
    assert len(p.calls(PRODUCE)) == EXAMPLES  # processed, answers lost

    p = serve()
    assert p.run("apply") == 0
    out = capsys.readouterr().out
    assert out.count("an interrupted run's render had reached VOD") == EXAMPLES
    renders = _renders(p)
    assert len(renders) == EXAMPLES and set(renders.values()) == {1}, renders
    assert all("pending" not in e and e.get("spec") for e in _state(p).values())
    assert len(p.calls(ADD)) == EXAMPLES
    _no_orphans(p)
    before = len(p.calls())
    assert p.run("apply") == 0 and len(p.calls()) == before  # converged: nothing to do


def test_dropped_add_is_found_by_title_not_created_twice(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    p = serve(drop_rate=1.0, drop_actions=(ADD,))
    assert p.run("apply") == 1
    assert "may have taken effect" in capsys.readouterr().err
    assert len(p.calls(ADD)) == EXAMPLES and p.calls(PRODUCE) == []
    assert all(e.get("pending", {}).get("op") == "create" for e in _state(p).values())

    p = serve()
    assert p.run("apply") == 0
    assert len(p.calls(ADD)) == EXAMPLES  # exactly one per project, ever
    assert len(p.calls("SearchEditingProject")) >= EXAMPLES
    assert len(p.server.emulator.projects()) == EXAMPLES
    renders = _renders(p)
    assert len(renders) == EXAMPLES and set(renders.values()) == {1}
    _no_orphans(p)


def test_a_lost_produce_is_sent_again(serve: Serve) -> None:
    p = serve(lose=(PRODUCE,))
    assert p.run("apply") == 1
    assert p.calls(PRODUCE) == []  # never reached VOD
    p = serve()
    assert p.run("apply") == 0
    renders = _renders(p)
    assert len(renders) == EXAMPLES and set(renders.values()) == {1}


def test_lost_render_with_an_unchanged_timeline_is_not_recorded_as_done(serve: Serve) -> None:
    """The weak spot: only produceConfig changed, so VOD's Timeline already matches and its
    ModifiedTime is that of the previous render, seconds ago. That must not count."""
    p = serve()
    assert p.run("apply") == 0
    promo = p.manifests / "campaigns" / "spring-promo.yaml"
    _edit(promo, "produceConfig:\n", "produceConfig:\n    Width: 1280\n")
    p = serve(lose=(PRODUCE,))
    assert p.run("apply") == 1
    p = serve()
    assert p.run("apply") == 0
    pid = _state(p)["spring-promo"]["project_id"]
    last = p.calls(PRODUCE)[-1]
    assert last.params["ProjectId"] == pid
    assert json.loads(last.params["ProduceConfig"])["Width"] == 1280  # rendered, not "recorded"


def test_dropped_render_with_an_unchanged_timeline_is_recognised(serve: Serve) -> None:
    """The same change, but the render reached VOD: recorded from ModifiedTime, not resent."""
    p = serve()
    assert p.run("apply") == 0
    promo = p.manifests / "campaigns" / "spring-promo.yaml"
    _edit(promo, "produceConfig:\n", "produceConfig:\n    Width: 1280\n")
    p = serve(drop_rate=1.0, drop_actions=(PRODUCE,))
    assert p.run("apply") == 1
    p = serve()
    assert p.run("apply") == 0
    renders = _renders(p)
    assert set(renders.values()) == {1}, renders  # the 1280 render exactly once
    assert len(renders) == EXAMPLES + 1


def test_a_render_that_happened_for_an_older_spec_does_not_hide_a_lost_one(
    serve: Serve,
) -> None:
    """Width 1280 reached VOD (answer dropped), then the manifest moved on to 1920 before the
    next run, whose 1920 render was lost: VOD's ModifiedTime now shows the 1280 render, which
    must not pass for the 1920 one."""
    p = serve()
    assert p.run("apply") == 0
    promo = p.manifests / "campaigns" / "spring-promo.yaml"
    _edit(promo, "produceConfig:\n", "produceConfig:\n    Width: 1280\n")
    p = serve(drop_rate=1.0, drop_actions=(PRODUCE,))
    assert p.run("apply", "--only", "spring-promo") == 1
    _edit(promo, "Width: 1280", "Width: 1920")
    p = serve(lose=(PRODUCE,))
    assert p.run("apply", "--only", "spring-promo") == 1
    p = serve()
    assert p.run("apply") == 0
    last = p.calls(PRODUCE)[-1]
    assert json.loads(last.params["ProduceConfig"])["Width"] == 1920
    assert set(_renders(p).values()) == {1}


def test_an_interrupted_adopt_is_settled(serve: Serve) -> None:
    """An adopt's render has no project in the state yet: the intent names it."""
    p = serve()
    client = VodClient(endpoint=p.server.url, credentials=Credentials(*ACCESS))
    try:
        existing = client.add_editing_project(title="made in the console").project_id
    finally:
        client.close()
    sting = p.manifests / "brand-sting.yaml"
    _edit(sting, "spec:\n", f"spec:\n  projectId: {existing}\n")
    p = serve(drop_rate=1.0, drop_actions=(PRODUCE,))
    assert p.run("apply", "--only", "brand-sting") == 1
    p = serve()
    assert p.run("apply", "--only", "brand-sting") == 0
    assert _state(p)["brand-sting"]["project_id"] == existing
    produced = [c for c in p.calls(PRODUCE) if c.params["ProjectId"] == existing]
    assert len(produced) == 1


def test_two_interrupted_creates_with_one_title_get_one_project_each(serve: Serve) -> None:
    p = serve(drop_rate=1.0, drop_actions=(ADD,))
    sting = p.manifests / "brand-sting.yaml"
    copy = p.manifests / "brand-sting-2.yaml"
    copy.write_text(sting.read_text().replace("name: brand-sting", "name: brand-sting-2"))
    assert p.run("apply", "--only", "brand-sting", "--only", "brand-sting-2") == 1
    p = serve()
    assert p.run("apply") == 0
    state = _state(p)
    assert state["brand-sting"]["project_id"] != state["brand-sting-2"]["project_id"]
    assert len(p.calls(ADD)) == EXAMPLES + 1
    _no_orphans(p)
