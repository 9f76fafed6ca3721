"""Faults (issue 6.4): throttling, 5xx and latency are absorbed; a permanent failure is isolated.

A 200-project catalogue is applied completely, each project created and rendered exactly once,
while 30% of requests are throttled, 5% answered with a 5xx and every answer takes 200 ms. A
render VOD refuses for good fails alone: the others are applied, the failure is reported with
VOD's Code, Message and RequestId, and it is not resubmitted for the same spec unless asked.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.adapters.emulator import Emulator, EmulatorConfig, EmulatorTransport
from reconciler.adapters.state import StateStore
from reconciler.adapters.vod.client import THROTTLED_ATTEMPTS, VodClient
from reconciler.adapters.vod.credentials import Credentials
from reconciler.cli.emulator_cmd import config_from_args, register
from reconciler.errors import ConfigError, VodApiError
from tests.func.conftest import ACCESS, Project, start_server

N = 200
REJECTED = ("p-007", "p-093", "p-151")
PRODUCE = "ProduceEditingProjectVideo"


def _manifest(i: int, media: str | None = None) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: EditingProject
metadata:
  name: p-{i:03d}
spec:
  title: Project {i:03d}
  timeline:
    VideoTracks:
      - VideoTrackClips:
          - {{MediaId: {media or f"m{i:03d}a"}, In: 0, Out: 5}}
          - {{MediaId: m{i:03d}b, In: 2, Out: {3 + i % 7}}}
"""


def _catalogue(root: Path) -> Path:
    manifests = root / "catalogue"
    for i in range(N):
        folder = manifests / f"team-{i % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        media = f"bad-{i:03d}" if f"p-{i:03d}" in REJECTED else None
        (folder / f"p-{i:03d}.yaml").write_text(_manifest(i, media))
    return manifests


@pytest.fixture
def catalogue(project: Project, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS[0])
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS[1])
    return _catalogue(project.root)


def _run(p: Project, manifests: Path, *more: str) -> int:
    return p.run(
        "apply", "--manifests", str(manifests), "--parallelism", "32", "--qps", "500", *more
    )


def _by_code(p: Project) -> Counter[str]:
    return Counter(c.code for c in p.calls())


# --------------------------------------------------------------------------- the fault knobs


def test_throttle_rate_and_reject_media_from_env_and_flags() -> None:
    env = {
        "RECONCILER_EMULATOR_THROTTLE_RATE": "0.3",
        "RECONCILER_EMULATOR_REJECT_MEDIA_IDS": "a, b",
    }
    config = EmulatorConfig.from_env(env)
    assert config.throttle_rate == 0.3 and config.reject_media_ids == {"a", "b"}
    with pytest.raises(ConfigError, match="throttle_rate must be between 0 and 1"):
        EmulatorConfig(throttle_rate=1.5)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["emulator", "serve", "--throttle-rate", "0.25", "--reject-media", "x"]
    )
    config = config_from_args(args)
    assert config.throttle_rate == 0.25 and config.reject_media_ids == {"x"}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(None, dict([ACCESS]), EmulatorConfig(throttle_rate=1.0, seed=1))
    yield emu
    emu.close()


def test_throttle_rate_answers_throttling_user_until_the_budget_is_spent(
    emulator: Emulator,
) -> None:
    client = VodClient(
        endpoint="http://127.0.0.1",
        credentials=emulator.demo_credentials,
        transport=EmulatorTransport(emulator),
        sleep=lambda _: None,
    )
    with client, pytest.raises(VodApiError) as info:
        client.get_editing_project("p")
    assert info.value.code == "Throttling.User" and info.value.http_status == 400
    assert client.stats.throttled == THROTTLED_ATTEMPTS == len(emulator.calls())


def test_reject_media_refuses_the_render_at_once_and_changes_nothing() -> None:
    emu = Emulator(None, dict([ACCESS]), EmulatorConfig(reject_media_ids=frozenset({"bad"})))
    client = VodClient(
        endpoint="http://127.0.0.1",
        credentials=emu.demo_credentials,
        transport=EmulatorTransport(emu),
    )
    with emu, client:
        project = client.add_editing_project(title="t")
        timeline = {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "ok"}, {"MediaId": "bad"}]}]}
        with pytest.raises(VodApiError) as info:
            client.produce_editing_project_video(project_id=project.project_id, timeline=timeline)
        assert info.value.code == "InvalidParameter" and not info.value.retryable
        assert "The media bad cannot be used for production" in info.value.message
        after = client.get_editing_project(project.project_id)
        assert after.timeline is None and after.status == "Normal"  # nothing was applied
        assert emu.jobs() == []


def test_throttling_has_a_budget_of_its_own() -> None:
    """Ten throttled answers in a row (likely enough at a 30% rate over hundreds of calls)
    are waited out; the policy's six attempts are for other failures."""
    answers = iter([429] * 10 + [200])

    def handler(request: httpx.Request) -> httpx.Response:
        if next(answers) == 200:
            return httpx.Response(200, json={"RequestId": "r", "Project": {"ProjectId": "p"}})
        body = {"RequestId": "r", "Code": "Throttling.User", "Message": "slow down"}
        return httpx.Response(400, json=body)

    client = VodClient(
        endpoint="http://127.0.0.1",
        credentials=Credentials(*ACCESS),
        transport=httpx.MockTransport(handler),
        sleep=lambda _: None,
    )
    with client:
        assert client.get_editing_project("p").project_id == "p"
        assert client.stats.retries == 10


# --------------------------------------------------------------------------- whole runs


def test_200_projects_under_throttling_5xx_and_latency_are_applied_once_each(
    project: Project, catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in REJECTED:  # this run is about transient faults only
        path = next(catalogue.rglob(f"{name}.yaml"))
        path.write_text(_manifest(int(name[2:])))
    server = start_server(
        project.root / "vod", throttle_rate=0.3, error_rate=0.05, latency=0.2, seed=6
    )
    try:
        p = Project(project.root, "v3", server)
        assert _run(p, catalogue) == 0, capsys.readouterr().err
        codes = _by_code(p)
        assert codes["Throttling.User"] > 0.2 * codes["OK"]  # the faults really happened
        assert codes["InternalError"] + codes["ServiceUnavailable"] > 0
        ok = [c for c in p.calls() if c.status == 200]
        assert Counter(c.action for c in ok) == {"AddEditingProject": N, PRODUCE: N}
        titles = Counter(c.params["Title"] for c in ok if c.action == "AddEditingProject")
        assert set(titles.values()) == {1}  # no project created twice
        rendered = Counter(c.params["ProjectId"] for c in ok if c.action == PRODUCE)
        assert len(rendered) == N and set(rendered.values()) == {1}  # none rendered twice
        state = StateStore(p.state).load().projects
        assert len(state) == N and all(e.get("spec") for e in state.values())
        assert {x.project_id for x in server.emulator.projects()} == {
            e["project_id"] for e in state.values()
        }
        summary = capsys.readouterr().out
        assert f"{N} created" in summary and "0 failed" in summary
    finally:
        server.stop()
        server.emulator.close()


def test_a_permanent_error_fails_three_projects_alone_and_is_not_resubmitted(
    project: Project, catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rejected = frozenset(f"bad-{name[2:]}" for name in REJECTED)
    server = start_server(project.root / "vod", reject_media_ids=rejected)
    try:
        p = Project(project.root, "v3", server)
        assert _run(p, catalogue) == 1
        err = capsys.readouterr().err
        failed_calls = {
            c.params["ProjectId"]: c for c in p.calls(PRODUCE) if c.code == "InvalidParameter"
        }
        state = StateStore(p.state).load().projects
        for name in REJECTED:
            call = failed_calls[state[name]["project_id"]]
            line = (
                f'failed: {name}: InvalidParameter: The specified parameter "Timeline" is '
                f"not valid. The media bad-{name[2:]} cannot be used for production. "
                f"(RequestId {call.request_id})"
            )
            assert line in err, err
        assert len(re.findall(r"^failed: ", err, re.M)) == len(REJECTED)
        applied = {n for n, e in state.items() if e.get("spec")}
        assert len(applied) == N - len(REJECTED) and not applied & set(REJECTED)

        # The same spec again: not resubmitted, the run says why, and it still exits 1
        # because the catalogue is not applied.
        before = len(p.calls())
        assert _run(p, catalogue) == 1
        assert len(p.calls()) == before  # not one call, for the 197 or the 3
        out, err = capsys.readouterr()
        for name in REJECTED:
            assert re.search(rf"unchanged +{name} .*failed permanently .*--retry-failed", out)
            assert f"held back: {name}: the last render of this spec failed permanently" in err

        # --retry-failed resubmits exactly those three (VOD still refuses them).
        assert _run(p, catalogue, "--retry-failed") == 1
        new = p.calls()[before:]
        assert sorted(c.params["ProjectId"] for c in new) == sorted(failed_calls)
        assert {c.action for c in new} == {PRODUCE}
        capsys.readouterr()

        # A changed spec is a new render: exactly the three, and then all is applied.
        before = len(p.calls())
        for name in REJECTED:
            path = next(catalogue.rglob(f"{name}.yaml"))
            path.write_text(_manifest(int(name[2:])))
        assert _run(p, catalogue) == 0
        new = p.calls()[before:]
        assert sorted(c.params["ProjectId"] for c in new) == sorted(failed_calls)
        assert {(c.action, c.status) for c in new} == {(PRODUCE, 200)}
        sent = {c.params["ProjectId"]: json.loads(c.params["Timeline"]) for c in new}
        assert all("bad-" not in json.dumps(t) for t in sent.values())
        before = len(p.calls())
        assert _run(p, catalogue) == 0 and len(p.calls()) == before
    finally:
        server.stop()
        server.emulator.close()
