"""One test per VOD error the emulator answers: code, HTTP status, message and document shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reconciler.adapters.emulator import Emulator, EmulatorConfig
from reconciler.adapters.emulator.models import iso
from reconciler.adapters.emulator.testing import FakeClock, SignedClient, in_process_client
from reconciler.adapters.vod import signing

TIMELINE = json.dumps({"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m1", "Out": 5}]}]})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(config=EmulatorConfig(produce_delay=2.0), clock=clock) as emulator:
        yield emulator


@pytest.fixture(params=["v3", "v2"])
def client(request: pytest.FixtureRequest, emu: Emulator, clock: FakeClock) -> SignedClient:
    return in_process_client(emu, signature=request.param, clock=clock)


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert VOD's error document and return it."""
    doc = response.json()
    assert (response.status_code, doc["Code"]) == (status, code), doc
    assert set(doc) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert doc["HostId"] == "vod.cn-shanghai.aliyuncs.com"
    assert doc["Recommend"] == (
        f"https://error-center.aliyun.com/status/search?Keyword={code}&source=PopGw"
    )
    assert response.headers["x-acs-request-id"] == doc["RequestId"]
    return doc  # type: ignore[no-any-return]


def new_project(client: SignedClient) -> str:
    return str(client.call("AddEditingProject", Title="t")["Project"]["ProjectId"])  # type: ignore[index]


def test_signature_does_not_match_v2_echoes_server_string_to_sign(
    emu: Emulator, clock: FakeClock
) -> None:
    client = in_process_client(emu, signature="v2", clock=clock)
    response = client.request("GetEditingProject", {"ProjectId": "p1"}, secret="wrong", nonce="n1")
    doc = error(response, 400, "SignatureDoesNotMatch")
    params = dict(response.request.url.params)
    del params["Signature"]
    expected = signing.rpc_string_to_sign("POST", params)
    assert doc["Message"] == (
        "Specified signature is not matched with our calculation. server string to sign is:"
        + expected
    )
    assert expected.startswith("POST&%2F&AccessKeyId%3D")


def test_signature_does_not_match_v3_echoes_server_string_to_sign(
    emu: Emulator, clock: FakeClock
) -> None:
    client = in_process_client(emu, signature="v3", clock=clock)
    response = client.request("GetEditingProject", {"ProjectId": "p1"}, secret="wrong")
    doc = error(response, 400, "SignatureDoesNotMatch")
    sent = response.request.headers
    names = [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ]
    parts = signing.v3_sign(
        method="POST",
        path="/",
        query={"ProjectId": "p1"},
        headers={n: sent[n] for n in names},
        secret="anything",
    )
    prefix = "Specified signature is not matched with our calculation. server string to sign is:"
    assert doc["Message"] == prefix + parts.string_to_sign


def test_v3_body_not_matching_content_sha256_is_a_signature_mismatch(
    emu: Emulator, clock: FakeClock
) -> None:
    client = in_process_client(emu, signature="v3", clock=clock)
    good = client.request("AddEditingProject", {"Title": "a"}, form=True)
    assert good.status_code == 200
    tampered = good.request
    tampered.headers["x-acs-signature-nonce"] = "fresh"  # not the cause: re-signed below
    headers = {k: v for k, v in tampered.headers.items() if k != "content-length"}
    creds = emu.demo_credentials
    signed = {k: v for k, v in headers.items() if k == "host" or k.startswith("x-acs-")}
    parts = signing.v3_sign(
        method="POST",
        path="/",
        query={},
        headers=signed,
        secret=creds.access_key_secret,
        payload_hash=headers["x-acs-content-sha256"],
    )
    headers["authorization"] = parts.authorization(creds.access_key_id)
    response = client.http.post("/", content=b"Title=evil", headers=headers)
    error(response, 400, "SignatureDoesNotMatch")


def test_v3_signed_headers_must_cover_the_acs_headers(emu: Emulator, clock: FakeClock) -> None:
    creds = emu.demo_credentials
    headers = signing.v3_headers_to_sign(
        host="vod.emulator.test", action="GetEditingProject", timestamp=iso(clock()), nonce="n"
    )
    partial = {k: v for k, v in headers.items() if k != "x-acs-signature-nonce"}
    parts = signing.v3_sign(
        method="POST",
        path="/",
        query={"ProjectId": "p"},
        headers=partial,
        secret=creds.access_key_secret,
    )
    client = in_process_client(emu, clock=clock)
    response = client.http.post(
        "/",
        params={"ProjectId": "p"},
        headers={**headers, "Authorization": parts.authorization(creds.access_key_id)},
    )
    doc = error(response, 400, "IncompleteSignature")
    assert "x-acs-signature-nonce" in doc["Message"]


def test_invalid_access_key_id_not_found(emu: Emulator, clock: FakeClock) -> None:
    for version in ("v3", "v2"):
        client = in_process_client(emu, signature=version, clock=clock, access_key_id="LTAInope")
        doc = error(
            client.request("GetEditingProject", {"ProjectId": "p"}),
            404,
            "InvalidAccessKeyId.NotFound",
        )
        assert doc["Message"] == "Specified access key is not found."


def test_invalid_timestamp_expired_beyond_15_minutes(
    client: SignedClient, clock: FakeClock
) -> None:
    late = iso(clock() - 15 * 60 - 1)
    doc = error(
        client.request("GetEditingProject", {"ProjectId": "p"}, timestamp=late),
        400,
        "InvalidTimeStamp.Expired",
    )
    assert doc["Message"] == "Specified time stamp or date value is expired."
    early = iso(clock() + 15 * 60 + 1)
    error(
        client.request("GetEditingProject", {"ProjectId": "p"}, timestamp=early),
        400,
        "InvalidTimeStamp.Expired",
    )
    edge = iso(clock() - 15 * 60)  # exactly 15 minutes is still accepted
    error(
        client.request("GetEditingProject", {"ProjectId": "p"}, timestamp=edge),
        404,
        "InvalidEditingProject.NotFound",
    )


def test_signature_nonce_used_within_window(client: SignedClient, clock: FakeClock) -> None:
    first = client.request("GetEditingProject", {"ProjectId": "p"}, nonce="same-nonce")
    error(first, 404, "InvalidEditingProject.NotFound")
    doc = error(
        client.request("GetEditingProject", {"ProjectId": "p"}, nonce="same-nonce"),
        400,
        "SignatureNonceUsed",
    )
    assert doc["Message"] == "Specified signature nonce was used already."
    clock.advance(15 * 60 + 1)  # outside the window the nonce is forgotten
    error(
        client.request("GetEditingProject", {"ProjectId": "p"}, nonce="same-nonce"),
        404,
        "InvalidEditingProject.NotFound",
    )


def test_nonces_are_remembered_per_access_key(emu: Emulator, clock: FakeClock) -> None:
    emu.add_access_key("other", "other-secret")
    demo = in_process_client(emu, clock=clock)
    other = in_process_client(
        emu, clock=clock, access_key_id="other", access_key_secret="other-secret"
    )
    assert demo.request("SearchEditingProject", nonce="n").status_code == 200
    assert other.request("SearchEditingProject", nonce="n").status_code == 200


def test_a_rejected_signature_does_not_burn_the_nonce(client: SignedClient) -> None:
    error(
        client.request("SearchEditingProject", nonce="n", secret="bad"),
        400,
        "SignatureDoesNotMatch",
    )
    assert client.request("SearchEditingProject", nonce="n").status_code == 200


def test_missing_parameter_for_protocol_parameters(emu: Emulator, clock: FakeClock) -> None:
    client = in_process_client(emu, signature="v2", clock=clock)
    doc = error(
        client.http.post(
            "/",
            params={"Action": "SearchEditingProject", "Version": "2017-03-21", "AccessKeyId": "x"},
        ),
        400,
        "MissingParameter",
    )
    assert doc["Message"] == (
        'The input parameter "Signature" that is mandatory for processing '
        "this request is not supplied."
    )
    error(client.http.post("/", params={"Version": "2017-03-21"}), 400, "MissingParameter")


def test_missing_parameter_when_produce_has_neither_project_nor_timeline(
    client: SignedClient,
) -> None:
    doc = error(
        client.request("ProduceEditingProjectVideo", {"Title": "x"}), 400, "MissingParameter"
    )
    assert "ProjectId or Timeline" in doc["Message"]


@pytest.mark.parametrize(
    ("action", "params", "code"),
    [
        ("AddEditingProject", {"Description": "no title"}, "MissingTitle"),
        ("GetEditingProject", {}, "MissingProjectId"),
        ("UpdateEditingProject", {"Title": "x"}, "MissingProjectId"),
        ("DeleteEditingProject", {}, "MissingProjectIds"),
    ],
)
def test_missing_name_for_required_business_parameters(
    client: SignedClient, action: str, params: dict[str, str], code: str
) -> None:
    doc = error(client.request(action, params), 400, code)
    name = code.removeprefix("Missing")
    assert doc["Message"] == (
        f'The input parameter "{name}" that is mandatory for processing '
        "this request is not supplied."
    )


@pytest.mark.parametrize(
    ("timeline", "why"),
    [
        ("{not json", "not a valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"VideoTracks":[{"VideoTrackClips":[{"In":0,"Out":1}]}]}', "MediaId is required"),
        ('{"VideoTracks":[{"VideoTrackClips":[{"MediaId":""}]}]}', "MediaId is required"),
        ('{"VideoTracks":[{"VideoTrackClips":[{"MediaId":"m","In":5,"Out":2}]}]}', "less than"),
        (json.dumps({"VideoTracks": [{"VideoTrackClips": []}] * 101}), "At most 100"),
        (json.dumps({"SubtitleTracks": [{}] * 101}), "At most 100"),
    ],
)
def test_invalid_parameter_for_a_bad_timeline(
    client: SignedClient, timeline: str, why: str
) -> None:
    doc = error(
        client.request("AddEditingProject", {"Title": "t", "Timeline": timeline}),
        400,
        "InvalidParameter",
    )
    assert '"Timeline"' in doc["Message"] and why in doc["Message"]


def test_invalid_parameter_for_search_paging_and_sort(client: SignedClient) -> None:
    error(client.request("SearchEditingProject", {"PageSize": "101"}), 400, "InvalidParameter")
    error(client.request("SearchEditingProject", {"PageNo": "zero"}), 400, "InvalidParameter")
    error(client.request("SearchEditingProject", {"SortBy": "Title:Asc"}), 400, "InvalidParameter")
    error(client.request("SearchEditingProject", {"Status": "Done"}), 400, "InvalidParameter")
    assert client.request("SearchEditingProject", {"PageSize": "100"}).status_code == 200


def test_invalid_editing_project_not_found(client: SignedClient) -> None:
    for action, params in [
        ("GetEditingProject", {"ProjectId": "nope"}),
        ("UpdateEditingProject", {"ProjectId": "nope", "Title": "x"}),
        ("DeleteEditingProject", {"ProjectIds": "nope,nope2"}),
        ("ProduceEditingProjectVideo", {"ProjectId": "nope"}),
    ]:
        doc = error(client.request(action, params), 404, "InvalidEditingProject.NotFound")
        assert doc["Message"] == "The specified editing project does not exist."


def test_throttling_user_over_the_qps_limit(clock: FakeClock) -> None:
    with Emulator(config=EmulatorConfig(qps_limit=3), clock=clock) as emu:
        client = in_process_client(emu, clock=clock)
        statuses = [client.request("SearchEditingProject").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        doc = error(client.request("SearchEditingProject"), 400, "Throttling.User")
        assert doc["Message"] == "Request was denied due to user flow throttling."
        clock.advance(1.0)  # the 1-s window slid past the first three
        assert client.request("SearchEditingProject").status_code == 200


def test_invalid_action_not_found(client: SignedClient) -> None:
    doc = error(client.request("DescribeEverything"), 404, "InvalidAction.NotFound")
    assert doc["Message"] == "Specified api is not found, please check your url and method."


def test_invalid_version(client: SignedClient) -> None:
    error(client.request("SearchEditingProject", version="2014-05-26"), 400, "InvalidVersion")


def test_random_server_errors_are_internal_error_or_service_unavailable(clock: FakeClock) -> None:
    with Emulator(config=EmulatorConfig(error_rate=1.0, seed=7), clock=clock) as emu:
        client = in_process_client(emu, clock=clock)
        seen = set()
        for _ in range(20):
            response = client.request("AddEditingProject", {"Title": "t"})
            doc = response.json()
            seen.add((response.status_code, doc["Code"]))
        assert seen == {(500, "InternalError"), (503, "ServiceUnavailable")}
        assert emu.projects() == []  # a 5xx did not take effect


def test_seeded_faults_are_reproducible(clock: FakeClock) -> None:
    def run() -> list[int]:
        with Emulator(config=EmulatorConfig(error_rate=0.5, seed=42), clock=clock) as emu:
            client = in_process_client(emu, clock=clock)
            return [client.request("SearchEditingProject").status_code for _ in range(30)]

    first = run()
    assert first == run() and {200, 500, 503} & set(first) == set(first) and 200 in first


def test_sts_security_token_is_accepted_and_checked(emu: Emulator, clock: FakeClock) -> None:
    for version in ("v3", "v2"):
        plain = in_process_client(emu, signature=version, clock=clock, security_token="tok+/=")
        assert plain.request("SearchEditingProject").status_code == 200
    emu.add_access_key("STS.key", "sts-secret", security_token="the-token")
    for version in ("v3", "v2"):
        good = in_process_client(
            emu,
            signature=version,
            clock=clock,
            access_key_id="STS.key",
            access_key_secret="sts-secret",
            security_token="the-token",
        )
        assert good.request("SearchEditingProject").status_code == 200
        bad = in_process_client(
            emu,
            signature=version,
            clock=clock,
            access_key_id="STS.key",
            access_key_secret="sts-secret",
            security_token="other",
        )
        error(
            bad.request("SearchEditingProject"), 400, "InvalidSecurityToken.MismatchWithAccessKey"
        )
    assert all("SecurityToken" not in c.params for c in emu.calls())


def test_invalid_timestamp_format(client: SignedClient) -> None:
    doc = error(
        client.request("SearchEditingProject", timestamp="2026/01/01 00:00"),
        400,
        "InvalidTimeStamp.Format",
    )
    assert doc["Message"] == "Specified time stamp or date value is not well formatted."


def test_unsupported_http_method(client: SignedClient) -> None:
    error(client.request("SearchEditingProject", method="PUT"), 400, "UnsupportedHTTPMethod")
