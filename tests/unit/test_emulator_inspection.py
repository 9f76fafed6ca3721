"""Call log, counts, out-of-band edits, persistence, configuration and transport faults."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reconciler.adapters.emulator import Emulator, EmulatorConfig
from reconciler.adapters.emulator.testing import FakeClock, in_process_client
from reconciler.errors import ConfigError, EmulatorError

TIMELINE = json.dumps({"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m"}]}]})


def test_calls_are_logged_without_secrets(tmp_path: Path) -> None:
    clock = FakeClock()
    with Emulator(tmp_path, config=EmulatorConfig(), clock=clock) as emu:
        v2 = in_process_client(emu, signature="v2", clock=clock, security_token="sts-token")
        v3 = in_process_client(emu, signature="v3", clock=clock)
        pid = v2.call("AddEditingProject", Title="t")["Project"]["ProjectId"]  # type: ignore[index]
        v3.request("GetEditingProject", {"ProjectId": "missing"})
        v3.request("GetEditingProject", {"ProjectId": pid}, secret="bad")
        calls = emu.calls()
    assert [(c.action, c.signature_version, c.status, c.code) for c in calls] == [
        ("AddEditingProject", "v2", 200, "OK"),
        ("GetEditingProject", "v3", 404, "InvalidEditingProject.NotFound"),
        ("GetEditingProject", "v3", 400, "SignatureDoesNotMatch"),
    ]
    assert calls[0].project_id == pid and calls[1].project_id == "missing"
    assert calls[0].params["Title"] == "t" and calls[0].params["AccessKeyId"]
    assert calls[0].access_key_id == emu.demo_credentials.access_key_id
    assert calls[2].access_key_id is None  # not authenticated
    text = json.dumps([c.to_json() for c in calls])
    assert 'Signature"' not in text and "sts-token" not in text
    assert emu.demo_credentials.access_key_secret not in text


def test_counts_per_action_and_project() -> None:
    clock = FakeClock()
    with Emulator(clock=clock) as emu:
        client = in_process_client(emu, clock=clock)
        a = client.call("AddEditingProject", Title="a")["Project"]["ProjectId"]  # type: ignore[index]
        b = client.call("AddEditingProject", Title="b")["Project"]["ProjectId"]  # type: ignore[index]
        client.call("ProduceEditingProjectVideo", ProjectId=str(a), Timeline=TIMELINE)
        client.call("ProduceEditingProjectVideo", ProjectId=str(a), Timeline=TIMELINE)
        client.call("DeleteEditingProject", ProjectIds=f"{a},{b}")
        counts = emu.counts()
        assert counts.of("AddEditingProject") == 2
        assert counts.of("ProduceEditingProjectVideo", str(a)) == 2
        assert counts.of("ProduceEditingProjectVideo", str(b)) == 0
        assert counts.of("DeleteEditingProject") == 1
        assert counts.of("DeleteEditingProject", str(b)) == 1
        assert counts.to_json()["ByProject"][a]["ProduceEditingProjectVideo"] == 2
        emu.reset_calls()
        assert emu.calls() == [] and emu.counts().by_action == {}


def test_the_call_log_is_capped_but_counts_are_not() -> None:
    clock = FakeClock()
    with Emulator(config=EmulatorConfig(call_log_cap=10), clock=clock) as emu:
        client = in_process_client(emu, clock=clock)
        for _ in range(2005):
            client.request("SearchEditingProject")
        assert len(emu.calls()) < 1100
        assert emu.counts().of("SearchEditingProject") == 2005
        assert len(emu.calls(limit=3)) == 3


def test_set_timeline_edits_a_project_outside_the_api() -> None:
    clock = FakeClock()
    with Emulator(clock=clock) as emu:
        client = in_process_client(emu, clock=clock)
        pid = str(client.call("AddEditingProject", Title="t")["Project"]["ProjectId"])  # type: ignore[index]
        clock.advance(30)
        emu.set_timeline(pid, {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "x"}]}]})
        doc = client.call("GetEditingProject", ProjectId=pid)["Project"]
        assert json.loads(doc["Timeline"])["VideoTracks"][0]["VideoTrackClips"][0]["MediaId"] == "x"  # type: ignore[index]
        assert doc["ModifiedTime"] != doc["CreationTime"]  # type: ignore[index]
        assert emu.counts().of("UpdateEditingProject") == 0


def test_imported_projects_answer_like_ones_made_through_the_api() -> None:
    clock = FakeClock()
    with Emulator(clock=clock) as emu:
        assert emu.import_projects({"p1": "One", "p2": "Two"}) == 2
        assert emu.import_projects({"p1": "Renamed", "p3": "Three"}) == 1  # p1 is left alone
        client = in_process_client(emu, clock=clock)
        doc = client.call("GetEditingProject", ProjectId="p1")["Project"]
        assert doc["Title"] == "One" and doc["Status"] == "Normal"  # type: ignore[index]
        answer = client.call("ProduceEditingProjectVideo", ProjectId="p2", Timeline=TIMELINE)
        assert answer["ProjectId"] == "p2" and answer["MediaId"]
        assert sorted(p.project_id for p in emu.projects()) == ["p1", "p2", "p3"]
        assert emu.counts().of("AddEditingProject") == 0  # not calls: nothing is logged


def test_embedded_emulator_persists_projects_and_the_demo_key(tmp_path: Path) -> None:
    clock = FakeClock()
    with Emulator.embedded(tmp_path, EmulatorConfig(produce_delay=5), clock=clock) as first:
        creds = first.demo_credentials
        client = in_process_client(first, clock=clock)
        doc = client.call("ProduceEditingProjectVideo", Timeline=TIMELINE)
    assert (tmp_path / "emulator" / "emulator.sqlite3").is_file()
    clock.advance(5)  # production completes "between runs", judged lazily by the next run
    with Emulator.embedded(tmp_path, EmulatorConfig(), clock=clock) as second:
        assert second.demo_credentials == creds
        client = in_process_client(second, clock=clock)
        project = client.call("GetEditingProject", ProjectId=str(doc["ProjectId"]))["Project"]
        assert project["Status"] == "Produced"  # type: ignore[index]
        assert [c.action for c in second.calls()] == [
            "ProduceEditingProjectVideo",
            "GetEditingProject",
        ]


def test_two_emulators_on_one_directory_settle_each_job_once(tmp_path: Path) -> None:
    clock = FakeClock()
    with Emulator(tmp_path, clock=clock) as a, Emulator(tmp_path, clock=clock) as b:
        assert a.demo_credentials == b.demo_credentials
        client = in_process_client(a, clock=clock)
        client.call("ProduceEditingProjectVideo", Timeline=TIMELINE)
        clock.advance(2)
        assert (a.settle(), b.settle()) == (1, 0)
        assert len(b.events()) == 1


def test_media_file_seeds_the_library(tmp_path: Path) -> None:
    media = tmp_path / "media.json"
    media.write_text(json.dumps([{"MediaId": "clip", "Duration": 3.5}]))
    with Emulator(config=EmulatorConfig(media_file=media)) as emu:
        assert emu.media() == {"clip": 3.5}
    media.write_text(json.dumps({"clip": "long"}))
    with pytest.raises(EmulatorError, match="bad entry 'clip'"):
        Emulator(config=EmulatorConfig(media_file=media))


def test_config_from_environment() -> None:
    env = {
        "RECONCILER_EMULATOR_LATENCY": "0.25",
        "RECONCILER_EMULATOR_QPS_LIMIT": "5",
        "RECONCILER_EMULATOR_DROP_ACTIONS": "ProduceEditingProjectVideo, AddEditingProject",
        "RECONCILER_EMULATOR_PERMISSIVE_MEDIA": "false",
        "RECONCILER_EMULATOR_SEED": "3",
        "RECONCILER_EMULATOR_PRODUCE_DELAY": "",
    }
    config = EmulatorConfig.from_env(env)
    assert (config.latency, config.qps_limit, config.permissive_media, config.seed) == (
        0.25,
        5.0,
        False,
        3,
    )
    assert config.drop_actions == {"ProduceEditingProjectVideo", "AddEditingProject"}
    assert config.produce_delay == 2.0
    with pytest.raises(ConfigError, match="RECONCILER_EMULATOR_ERROR_RATE"):
        EmulatorConfig.from_env({"RECONCILER_EMULATOR_ERROR_RATE": "lots"})
    with pytest.raises(ConfigError, match="between 0 and 1"):
        EmulatorConfig(drop_rate=2)


def test_latency_is_fixed_plus_seeded_jitter() -> None:
    slept: list[float] = []
    config = EmulatorConfig(latency=0.1, latency_jitter=0.05, seed=1)
    with Emulator(config=config, sleep=slept.append) as emu:
        client = in_process_client(emu)
        for _ in range(5):
            client.request("SearchEditingProject")
    assert len(slept) == 5 and all(0.1 <= s <= 0.15 for s in slept) and len(set(slept)) == 5


def test_transport_drop_raises_after_the_request_took_effect() -> None:
    config = EmulatorConfig(drop_rate=1.0, drop_actions=frozenset({"AddEditingProject"}))
    with Emulator(config=config) as emu:
        client = in_process_client(emu)
        with pytest.raises(httpx.RemoteProtocolError):
            client.request("AddEditingProject", {"Title": "ambiguous"})
        assert [p.title for p in emu.projects()] == ["ambiguous"]  # it did happen
        assert [(c.code, c.dropped) for c in emu.calls()] == [("OK", True)]
        assert client.request("SearchEditingProject").status_code == 200  # other actions answer


def test_inspection_endpoints_through_the_transport() -> None:
    with Emulator() as emu:
        client = in_process_client(emu)
        client.request("AddEditingProject", {"Title": "t"})
        http = client.http
        assert http.get("/_emulator/health").json() == {"ok": True}
        [call] = http.get("/_emulator/calls").json()["Calls"]
        assert call["Action"] == "AddEditingProject" and "Signature" not in call["Params"]
        assert http.get("/_emulator/counts").json()["ByAction"] == {"AddEditingProject": 1}
        pid = http.get("/_emulator/projects").json()["Projects"][0]["project_id"]
        tl = http.post(f"/_emulator/projects/{pid}/timeline", content=TIMELINE)
        assert tl.status_code == 200 and emu.projects()[0].timeline is not None
        bad = http.post(f"/_emulator/projects/{pid}/timeline", content=b"[]")
        assert bad.status_code == 400 and bad.json()["Code"] == "InvalidParameter"
        assert http.post("/_emulator/media", json={"x": 4}).json()["Media"]["x"] == 4.0
        assert http.post("/_emulator/reset").status_code == 200 and emu.calls() == []
        assert http.get("/_emulator/nope").status_code == 404


def test_a_failed_action_does_not_settle_or_send_callbacks_twice() -> None:
    clock = FakeClock()
    config = EmulatorConfig(callback_attempts=1, callback_timeout=0.5)
    with Emulator(config=config, clock=clock) as emu:
        client = in_process_client(emu, clock=clock)
        user_data = json.dumps({"MessageCallback": {"CallbackURL": "http://127.0.0.1:9/cb"}})
        client.call("ProduceEditingProjectVideo", Timeline=TIMELINE, UserData=user_data)
        clock.advance(2)
        failed = client.request("GetEditingProject", {"ProjectId": "missing"})
        assert failed.status_code == 404
        assert emu.events() == []  # rolled back with the failed Action
        assert client.request("SearchEditingProject").status_code == 200
        assert emu.flush_callbacks(10)
        [event] = emu.events()
        assert (event.delivery, event.attempts) == ("failed", 1)
