"""Editing-project semantics: CRUD, search, the four Produce combinations, async production."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.adapters.emulator import Emulator, EmulatorConfig
from reconciler.adapters.emulator.models import iso
from reconciler.adapters.emulator.testing import FakeClock, SignedClient, in_process_client

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def timeline(*clips: dict[str, Any]) -> str:
    return json.dumps({"VideoTracks": [{"VideoTrackClips": list(clips)}]})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[Emulator]:
    config = EmulatorConfig(produce_delay=2.0, fail_media_ids=frozenset({"broken"}))
    with Emulator(config=config, clock=clock) as emulator:
        emulator.register_media({"m10": 10.0})
        yield emulator


@pytest.fixture(params=["v3", "v2"])
def client(request: pytest.FixtureRequest, emu: Emulator, clock: FakeClock) -> SignedClient:
    return in_process_client(emu, signature=request.param, clock=clock)


def ok(client: SignedClient, action: str, **params: str) -> dict[str, Any]:
    response = client.request(action, params)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    assert re.fullmatch(r"[0-9A-F-]{36}", doc["RequestId"])
    return doc


def get(client: SignedClient, project_id: str) -> dict[str, Any]:
    return ok(client, "GetEditingProject", ProjectId=project_id)["Project"]  # type: ignore[no-any-return]


def test_add_returns_the_documented_project(client: SignedClient, clock: FakeClock) -> None:
    doc = ok(client, "AddEditingProject", Title="Promo", Description="cut")
    project = doc["Project"]
    assert set(project) == {
        "ProjectId",
        "Title",
        "Description",
        "Status",
        "CreationTime",
        "ModifiedTime",
    }
    assert re.fullmatch(r"[0-9a-f]{32}", project["ProjectId"])
    assert project["Status"] == "Normal"
    assert (
        project["CreationTime"] == project["ModifiedTime"] == iso(clock()) == "2026-01-01T00:00:00Z"
    )


def test_get_returns_the_timeline_as_a_json_string(client: SignedClient) -> None:
    tl = '{ "VideoTracks": [ {"VideoTrackClips": [{"MediaId": "m10", "In": 0, "Out": 5.5}]} ] }'
    pid = ok(client, "AddEditingProject", Title="t", Timeline=tl)["Project"]["ProjectId"]
    project = get(client, pid)
    assert isinstance(project["Timeline"], str)
    assert json.loads(project["Timeline"]) == json.loads(tl)
    assert {
        "ProjectId",
        "Title",
        "CoverURL",
        "CreationTime",
        "ModifiedTime",
        "RegionId",
        "StorageLocation",
        "Status",
        "Timeline",
    } <= set(project)
    assert project["RegionId"] == "cn-shanghai"
    assert project["CoverURL"].endswith("/m10/snapshots/normal/00001.jpg")  # first material


def test_a_project_without_timeline_has_no_timeline_field(client: SignedClient) -> None:
    pid = ok(client, "AddEditingProject", Title="t")["Project"]["ProjectId"]
    assert "Timeline" not in get(client, pid) and "CoverURL" not in get(client, pid)


def test_update_changes_fields_and_modified_time(client: SignedClient, clock: FakeClock) -> None:
    pid = ok(client, "AddEditingProject", Title="a", Description="d")["Project"]["ProjectId"]
    clock.advance(61)
    assert set(
        ok(
            client,
            "UpdateEditingProject",
            ProjectId=pid,
            Title="b",
            CoverURL="http://c",
            Timeline=timeline({"MediaId": "m10"}),
        )
    ) == {"RequestId"}
    project = get(client, pid)
    assert (project["Title"], project["Description"], project["CoverURL"]) == ("b", "d", "http://c")
    assert project["ModifiedTime"] == iso(clock()) != project["CreationTime"]
    assert json.loads(project["Timeline"]) == json.loads(timeline({"MediaId": "m10"}))


def test_search_filters_sorts_and_pages(client: SignedClient, clock: FakeClock) -> None:
    ids = []
    for i, title in enumerate(["spring promo", "summer promo", "autumn cut", "winter promo"]):
        ids.append(
            ok(
                client,
                "AddEditingProject",
                Title=title,
                Timeline=timeline({"MediaId": "m10", "Out": i + 1}),
            )["Project"]["ProjectId"]
        )
        clock.advance(60)
    doc = ok(client, "SearchEditingProject", Title="promo")
    assert doc["Total"] == 3
    found = doc["ProjectList"]["Project"]
    assert [p["ProjectId"] for p in found] == [ids[3], ids[1], ids[0]]  # CreationTime:Desc
    assert all("Timeline" not in p for p in found)
    assert [p["Duration"] for p in found] == [4.0, 2.0, 1.0]
    for sort in ("CreationTime:Asc", "asc"):
        asc = ok(client, "SearchEditingProject", SortBy=sort, PageSize="2", PageNo="2")
        assert asc["Total"] == 4
        assert [p["ProjectId"] for p in asc["ProjectList"]["Project"]] == ids[2:]
    window = ok(
        client,
        "SearchEditingProject",
        StartTime=iso(1_767_225_600 + 60),
        EndTime=iso(1_767_225_600 + 120),
    )
    assert [p["ProjectId"] for p in window["ProjectList"]["Project"]] == [ids[2], ids[1]]
    ok(client, "ProduceEditingProjectVideo", ProjectId=ids[0])
    by_status = ok(client, "SearchEditingProject", Status="Producing,Produced")
    assert [p["ProjectId"] for p in by_status["ProjectList"]["Project"]] == [ids[0]]
    assert ok(client, "SearchEditingProject")["Total"] == 4  # default PageSize 10


def test_search_page_size_defaults_to_10(client: SignedClient) -> None:
    for i in range(12):
        ok(client, "AddEditingProject", Title=f"p{i}")
    doc = ok(client, "SearchEditingProject")
    assert doc["Total"] == 12 and len(doc["ProjectList"]["Project"]) == 10


def test_delete_takes_comma_separated_ids(client: SignedClient) -> None:
    a, b, c = (ok(client, "AddEditingProject", Title=t)["Project"]["ProjectId"] for t in "abc")
    assert set(ok(client, "DeleteEditingProject", ProjectIds=f"{a}, {b}")) == {"RequestId"}
    remaining = ok(client, "SearchEditingProject")["ProjectList"]["Project"]
    assert [p["ProjectId"] for p in remaining] == [c]


def test_produce_with_timeline_only_creates_a_project(client: SignedClient, emu: Emulator) -> None:
    doc = ok(
        client, "ProduceEditingProjectVideo", Timeline=timeline({"MediaId": "m10"}), Title="fresh"
    )
    assert set(doc) == {"RequestId", "MediaId", "ProjectId"}
    assert re.fullmatch(r"[0-9a-f]{32}", doc["MediaId"])
    project = get(client, doc["ProjectId"])
    assert (project["Title"], project["Status"]) == ("fresh", "Producing")
    assert json.loads(project["Timeline"]) == json.loads(timeline({"MediaId": "m10"}))


def test_produce_with_project_only_uses_the_stored_timeline(
    client: SignedClient, emu: Emulator
) -> None:
    stored = timeline({"MediaId": "m10", "In": 1, "Out": 4})
    pid = ok(client, "AddEditingProject", Title="t", Timeline=stored)["Project"]["ProjectId"]
    doc = ok(client, "ProduceEditingProjectVideo", ProjectId=pid)
    assert doc["ProjectId"] == pid
    job = next(j for j in emu.jobs() if j.media_id == doc["MediaId"])
    assert (job.project_id, job.duration) == (pid, 3.0)


def test_produce_with_project_only_and_no_timeline_is_invalid(client: SignedClient) -> None:
    pid = ok(client, "AddEditingProject", Title="t")["Project"]["ProjectId"]
    response = client.request("ProduceEditingProjectVideo", {"ProjectId": pid})
    assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")


def test_produce_with_both_updates_the_project(client: SignedClient, clock: FakeClock) -> None:
    pid = ok(client, "AddEditingProject", Title="old", Description="d")["Project"]["ProjectId"]
    clock.advance(5)
    new = timeline({"MediaId": "m10", "Out": 2})
    doc = ok(
        client,
        "ProduceEditingProjectVideo",
        ProjectId=pid,
        Timeline=new,
        Title="new",
        CoverURL="http://cover",
    )
    assert doc["ProjectId"] == pid
    project = get(client, pid)
    assert (project["Title"], project["Description"], project["CoverURL"]) == (
        "new",
        "d",
        "http://cover",
    )
    assert json.loads(project["Timeline"]) == json.loads(new)
    assert project["ModifiedTime"] == iso(clock())
    assert project["Status"] == "Producing"


def test_production_finishes_after_the_delay(
    client: SignedClient, emu: Emulator, clock: FakeClock
) -> None:
    doc = ok(client, "ProduceEditingProjectVideo", Timeline=timeline({"MediaId": "m10"}))
    clock.advance(1.9)
    assert get(client, doc["ProjectId"])["Status"] == "Producing"
    clock.advance(0.2)
    assert get(client, doc["ProjectId"])["Status"] == "Produced"
    [event] = [e for e in emu.events() if e.media_id == doc["MediaId"]]
    assert event.event == {
        "EventTime": iso(1_767_225_602),
        "EventType": "ProduceMediaComplete",
        "Status": "success",
        "MediaId": doc["MediaId"],
        "ProjectId": doc["ProjectId"],
    }
    assert event.delivery == "none"
    assert emu.media()[doc["MediaId"]] == 10.0  # the produced video is usable media


@pytest.mark.parametrize(
    ("clip", "code"),
    [
        ({"MediaId": "m10", "In": 0, "Out": 12}, "InvalidParameter.ResourceContentBad"),
        ({"MediaId": "m10", "In": 10}, "InvalidParameter.ResourceContentBad"),
        ({"MediaId": "broken"}, "InvalidParameter.ResourceContentBad"),
    ],
)
def test_bad_media_fails_production_asynchronously(
    client: SignedClient, emu: Emulator, clock: FakeClock, clip: dict[str, Any], code: str
) -> None:
    doc = ok(client, "ProduceEditingProjectVideo", Timeline=timeline(clip))  # accepted at once
    assert get(client, doc["ProjectId"])["Status"] == "Producing"
    clock.advance(2)
    assert get(client, doc["ProjectId"])["Status"] == "ProduceFailed"
    [job] = [j for j in emu.jobs() if j.media_id == doc["MediaId"]]
    assert (job.status, job.error_code) == ("ProduceFailed", code)
    [event] = emu.events()
    assert event.event["Status"] == "fail" and event.event["ErrorCode"] == code
    assert event.event["ErrorMessage"].startswith("The resource operated InputFile is bad")


def test_unknown_media_is_auto_registered_with_60_seconds(
    client: SignedClient, emu: Emulator
) -> None:
    ok(client, "AddEditingProject", Title="t", Timeline=timeline({"MediaId": "new-one"}))
    assert emu.media()["new-one"] == 60.0


def test_strict_media_fails_production_of_unknown_media(clock: FakeClock) -> None:
    config = EmulatorConfig(permissive_media=False, produce_delay=0)
    with Emulator(config=config, clock=clock) as emu:
        client = in_process_client(emu, clock=clock)
        doc = ok(client, "ProduceEditingProjectVideo", Timeline=timeline({"MediaId": "ghost"}))
        assert get(client, doc["ProjectId"])["Status"] == "ProduceFailed"
        assert emu.jobs()[0].error_code == "InvalidParameter.ResourceNotFound"


def test_latest_job_decides_the_project_status(client: SignedClient, clock: FakeClock) -> None:
    first = ok(client, "ProduceEditingProjectVideo", Timeline=timeline({"MediaId": "broken"}))
    pid = first["ProjectId"]
    clock.advance(1)
    ok(client, "ProduceEditingProjectVideo", ProjectId=pid, Timeline=timeline({"MediaId": "m10"}))
    clock.advance(1.5)  # the first (failing) job is done, the second is still running
    assert get(client, pid)["Status"] == "Producing"
    clock.advance(1)
    assert get(client, pid)["Status"] == "Produced"


def test_produce_validates_its_json_parameters(client: SignedClient) -> None:
    tl = timeline({"MediaId": "m10"})
    for name, value in [
        ("UserData", "[]"),
        ("ProduceConfig", "{bad"),
        ("MediaMetadata", '"x"'),
        ("UserData", json.dumps({"Extend": "x" * 300})),
    ]:
        response = client.request("ProduceEditingProjectVideo", {"Timeline": tl, name: value})
        assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")
        assert f'"{name}"' in response.json()["Message"]


def test_storage_location_is_required_outside_shanghai(clock: FakeClock) -> None:
    with Emulator(config=EmulatorConfig(region="ap-southeast-1"), clock=clock) as emu:
        client = in_process_client(emu, clock=clock)
        tl = timeline({"MediaId": "m"})
        bad = client.request("ProduceEditingProjectVideo", {"Timeline": tl})
        assert bad.json()["Code"] == "InvalidParameter"
        good = client.request(
            "ProduceEditingProjectVideo",
            {"Timeline": tl, "ProduceConfig": '{"StorageLocation":"out.oss"}'},
        )
        assert good.status_code == 200
        assert get(client, good.json()["ProjectId"])["RegionId"] == "ap-southeast-1"


def test_parameters_may_come_in_a_form_body_or_by_get(emu: Emulator, clock: FakeClock) -> None:
    for version in ("v3", "v2"):
        client = in_process_client(emu, signature=version, clock=clock)
        big = timeline(*[{"MediaId": f"m{i}"} for i in range(200)])  # too long for a URL
        response = client.request(
            "AddEditingProject", {"Title": "form", "Timeline": big}, form=True
        )
        assert response.status_code == 200, response.text
        assert response.request.url.query == b""
        pid = response.json()["Project"]["ProjectId"]
        by_get = client.request("GetEditingProject", {"ProjectId": pid}, method="GET")
        assert json.loads(by_get.json()["Project"]["Timeline"]) == json.loads(big)
