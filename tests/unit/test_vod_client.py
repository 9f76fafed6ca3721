"""VodClient against scripted responses (httpx.MockTransport): wire format, signing, retries,
ambiguity, paging, pacing, and that no secret ever leaks."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.adapters.vod import signing
from reconciler.adapters.vod.client import VodClient
from reconciler.adapters.vod.credentials import Credentials, resolve_credentials
from reconciler.adapters.vod.endpoints import Endpoint
from reconciler.adapters.vod.ratelimit import RetryPolicy
from reconciler.errors import ConfigError, CredentialsError, VodApiError, VodTransportError

VECTORS = Path(__file__).parent.parent / "fixtures" / "vectors"
KEY_ID, SECRET, TOKEN = "LTAIunitkey", "unit-Secret+/=~*value", "STS.unit+token/=="
CREDS = Credentials(KEY_ID, SECRET)
STS = Credentials(KEY_ID, SECRET, TOKEN)
T0 = 1704110400.0  # 2024-01-01T12:00:00Z, the vectors' timestamp
FIXED_NONCE = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """Wall and monotonic clocks that move only when the client sleeps."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def time(self) -> float:
        return T0 + self.mono

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.mono += seconds


def counter_nonce() -> Callable[[], str]:
    count = iter(range(1_000_000))
    return lambda: f"nonce-{next(count)}"


def make_client(
    handler: Handler,
    *,
    signature: str = "v3",
    credentials: Any = CREDS,
    fake: FakeTime | None = None,
    **kwargs: Any,
) -> VodClient:
    fake = fake or FakeTime()
    kwargs.setdefault("nonce", counter_nonce())
    kwargs.setdefault("rand", lambda: 0.5)
    return VodClient(
        credentials=credentials,
        signature=signature,  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        clock=fake.time,
        monotonic=fake.monotonic,
        sleep=fake.sleep,
        **kwargs,
    )


def verify(request: httpx.Request, secret: str = SECRET) -> tuple[str, dict[str, str]]:
    """Check the request as the gateway does (decode, re-sign, compare); return (action,
    business params)."""
    assert request.method == "POST"
    assert request.url.path == "/"
    assert request.content == b""
    pairs = parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True)
    if "authorization" in request.headers:
        fields = signing.parse_v3_authorization(request.headers["authorization"])
        assert fields is not None and fields["Credential"] == KEY_ID
        names = fields["SignedHeaders"].split(";")
        assert set(names) >= {
            "host",
            "x-acs-action",
            "x-acs-version",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-content-sha256",
        }
        assert {n for n in request.headers if n.startswith("x-acs-")} <= set(names)
        parts = signing.v3_sign(
            method="POST",
            path="/",
            query=pairs,
            headers={n: request.headers[n] for n in names},
            secret=secret,
        )
        assert parts.signature == fields["Signature"]
        assert request.headers["x-acs-version"] == "2017-03-21"
        return request.headers["x-acs-action"], dict(pairs)
    params = dict(pairs)
    assert len(params) == len(pairs)  # no duplicated names
    sent = params.pop("Signature")
    assert signing.rpc_signature("POST", params, secret) == sent
    common = {
        "Action",
        "Version",
        "Format",
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "SecurityToken",
    }
    assert params["Version"] == "2017-03-21" and params["Format"] == "JSON"
    return params["Action"], {k: v for k, v in params.items() if k not in common}


def ok(body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.Response(200, json={"RequestId": "req-ok", **(body or {})})


def api_error(
    code: str, status: int = 400, message: str = "nope", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers,
        json={
            "RequestId": f"req-{code}",
            "HostId": "vod.cn-shanghai.aliyuncs.com",
            "Code": code,
            "Message": message,
            "Recommend": f"https://error-center.aliyun.com/status/search?Keyword={code}",
        },
    )


class Script:
    """Answers requests from a list of responses/exceptions, recording what was sent."""

    def __init__(self, *steps: httpx.Response | Exception | Handler) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        verify(request)
        with self.lock:
            self.requests.append(request)
            step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if callable(step) and not isinstance(step, httpx.Response):
            return step(request)
        return step


PRODUCED = {"MediaId": "media-1", "ProjectId": "proj-1"}
PROJECT = {
    "Project": {
        "ProjectId": "proj-1",
        "Title": "t",
        "Status": "Normal",
        "Timeline": '{"VideoTracks":[{"VideoTrackClips":[{"MediaId":"m"}]}]}',
    }
}


# --------------------------------------------------------------------------- wire format


@pytest.mark.parametrize("signature", ["v3", "v2"])
def test_every_operation_sends_the_documented_parameters(signature: str) -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        action, params = verify(request)
        seen.append((action, params))
        if action == "SearchEditingProject":
            return ok({"Total": 1, "ProjectList": {"Project": [PROJECT["Project"]]}})
        return ok({**PROJECT, **PRODUCED})

    client = make_client(handler, signature=signature)
    timeline = {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m", "In": 0, "Out": 5.5}]}]}
    client.add_editing_project(
        title="T", description="d", timeline=timeline, cover_url="u", division="cn-shanghai"
    )
    client.update_editing_project("proj-1", title="T2", timeline=timeline)
    client.get_editing_project("proj-1")
    client.search_editing_projects(
        title="T",
        status=["Normal", "Produced"],
        start_time="2024-01-01T00:00:00Z",
        sort_by="CreationTime:Desc",
    )
    client.delete_editing_projects(["a", "b"])
    client.produce_editing_project_video(
        project_id="proj-1",
        timeline=timeline,
        produce_config={"TemplateGroupId": "g"},
        media_metadata={"Title": "成片"},
        user_data={"Extend": {}},
    )
    compact = '{"VideoTracks":[{"VideoTrackClips":[{"MediaId":"m","In":0,"Out":5.5}]}]}'
    assert seen == [
        (
            "AddEditingProject",
            {
                "Title": "T",
                "Description": "d",
                "Timeline": compact,
                "CoverURL": "u",
                "Division": "cn-shanghai",
            },
        ),
        ("UpdateEditingProject", {"ProjectId": "proj-1", "Title": "T2", "Timeline": compact}),
        ("GetEditingProject", {"ProjectId": "proj-1"}),
        (
            "SearchEditingProject",
            {
                "Title": "T",
                "Status": "Normal,Produced",
                "StartTime": "2024-01-01T00:00:00Z",
                "SortBy": "CreationTime:Desc",
                "PageNo": "1",
                "PageSize": "100",
            },
        ),
        ("DeleteEditingProject", {"ProjectIds": "a,b"}),
        (
            "ProduceEditingProjectVideo",
            {
                "ProjectId": "proj-1",
                "Timeline": compact,
                "MediaMetadata": '{"Title":"成片"}',
                "ProduceConfig": '{"TemplateGroupId":"g"}',
                "UserData": '{"Extend":{}}',
            },
        ),
    ]


def test_v3_headers() -> None:
    script = Script(ok(PROJECT))
    make_client(script, credentials=STS).get_editing_project("p")
    headers = script.requests[0].headers
    assert headers["host"] == "vod.cn-shanghai.aliyuncs.com"
    assert headers["x-acs-action"] == "GetEditingProject"
    assert headers["x-acs-date"] == "2024-01-01T12:00:00Z"
    assert headers["x-acs-signature-nonce"] == "nonce-0"
    assert headers["x-acs-content-sha256"] == signing.EMPTY_SHA256
    assert headers["x-acs-security-token"] == TOKEN
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("reconciler/")
    assert "x-acs-security-token" in headers["authorization"]
    assert "Action" not in dict(script.requests[0].url.params)


def test_v2_carries_everything_in_the_query() -> None:
    script = Script(ok(PROJECT))
    make_client(script, signature="v2", credentials=STS).get_editing_project("p")
    params = dict(script.requests[0].url.params)
    assert params["SecurityToken"] == TOKEN
    assert params["SignatureMethod"] == "HMAC-SHA1" and params["SignatureVersion"] == "1.0"
    assert params["Timestamp"] == "2024-01-01T12:00:00Z"
    assert "authorization" not in script.requests[0].headers


def _vectors(name: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in json.loads((VECTORS / name).read_text(encoding="utf-8"))}


def _maybe_literal(value: Any) -> Any:
    import ast

    return ast.literal_eval(value) if isinstance(value, str) else value


def _as_dict(value: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(value)
    return parsed


@pytest.mark.parametrize(
    "name",
    [
        "produce-basic-timeline",
        "produce-unicode-metadata",
        "update-special-chars",
        "produce-complex-timeline-sts",
        "delete-comma-ids",
        "get-secret-special",
    ],
)
def test_v2_end_to_end_reproduces_official_vectors(name: str) -> None:
    vector = _vectors("signature_v2_hmac_sha1.json")[name]
    params: dict[str, str] = _maybe_literal(vector["params"])
    creds = Credentials(params["AccessKeyId"], vector["secret"], params.get("SecurityToken"))
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return ok({**PROJECT, **PRODUCED})

    client = make_client(
        handler, signature="v2", credentials=creds, nonce=lambda: params["SignatureNonce"]
    )
    business = {
        k: v
        for k, v in params.items()
        if k
        not in {
            "AccessKeyId",
            "Action",
            "Format",
            "SignatureMethod",
            "SignatureNonce",
            "SignatureVersion",
            "Timestamp",
            "Version",
            "SecurityToken",
        }
    }
    json_args = {
        k: _as_dict(business[k])
        for k in ("Timeline", "MediaMetadata", "ProduceConfig", "UserData")
        if k in business
    }
    if params["Action"] == "ProduceEditingProjectVideo":
        client.produce_editing_project_video(
            project_id=business.get("ProjectId"),
            timeline=json_args.get("Timeline"),
            title=business.get("Title"),
            description=business.get("Description"),
            media_metadata=json_args.get("MediaMetadata"),
            produce_config=json_args.get("ProduceConfig"),
            user_data=json_args.get("UserData"),
        )
    elif params["Action"] == "UpdateEditingProject":
        client.update_editing_project(
            business["ProjectId"],
            title=business["Title"],
            description=business["Description"],
            cover_url=business["CoverURL"],
        )
    elif params["Action"] == "DeleteEditingProject":
        client.delete_editing_projects(business["ProjectIds"].split(","))
    else:
        client.get_editing_project(business["ProjectId"])
    decoded = dict(parse_qsl(sent[0].url.query.decode("ascii"), keep_blank_values=True))
    assert decoded.pop("Signature") == vector["signature"]
    assert decoded == params


@pytest.mark.parametrize("name", ["vod-produce-v3", "vod-get-v3-sts"])
def test_v3_end_to_end_reproduces_official_vectors(name: str) -> None:
    vector = _vectors("signature_v3_acs3.json")[name]
    query: dict[str, str] = _maybe_literal(vector["query"])
    headers: dict[str, str] = _maybe_literal(vector["headers"])
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return ok({**PROJECT, **PRODUCED})

    creds = Credentials(
        vector["access_key_id"], vector["secret"], headers.get("x-acs-security-token")
    )
    client = make_client(
        handler,
        credentials=creds,
        endpoint=f"https://{vector['host']}",
        nonce=lambda: headers["x-acs-signature-nonce"],
    )
    if "Timeline" in query:
        client.produce_editing_project_video(
            timeline=_as_dict(query["Timeline"]),
            title=query["Title"],
            produce_config=_as_dict(query["ProduceConfig"]),
        )
    else:
        client.get_editing_project(query["ProjectId"])
    assert sent[0].headers["authorization"] == vector["authorization"]


TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=TEXT,
    description=TEXT,
    extend=st.dictionaries(TEXT, TEXT, max_size=3),
    signature=st.sampled_from(["v2", "v3"]),
)
def test_any_text_round_trips_and_verifies(
    title: str, description: str, extend: dict[str, str], signature: str
) -> None:
    """Whatever the values, the server decodes exactly what was signed (`+`, `*`, `~`, `%`,
    spaces, unicode, newlines, JSON) and the signature checks out."""
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(verify(request)[1])
        return ok(PRODUCED)

    client = make_client(handler, signature=signature, credentials=STS)
    client.produce_editing_project_video(
        project_id="p+*~ %",
        title=title or "x",
        description=description,
        user_data={"Extend": extend},
    )
    assert seen[0]["Title"] == (title or "x")
    assert seen[0]["Description"] == description
    assert seen[0]["ProjectId"] == "p+*~ %"
    assert json.loads(seen[0]["UserData"]) == {"Extend": extend}


def test_host_header_follows_the_endpoint_with_a_transport() -> None:
    script = Script(ok(PROJECT))
    make_client(script, endpoint="http://127.0.0.1:8999").get_editing_project("p")
    assert script.requests[0].headers["host"] == "127.0.0.1:8999"
    client = make_client(Script(ok(PROJECT)), endpoint=Endpoint("https", "vod.example.com"))
    assert client.endpoint.base_url == "https://vod.example.com"


def test_region_selects_the_host() -> None:
    script = Script(ok(PROJECT))
    make_client(script, region="cn-hangzhou").get_editing_project("p")
    assert script.requests[0].headers["host"] == "vod.cn-shanghai.aliyuncs.com"


def test_duck_typed_keys_are_accepted() -> None:
    class Demo:
        access_key_id, access_key_secret, security_token = KEY_ID, SECRET, None

    script = Script(ok(PROJECT))
    make_client(script, credentials=Demo()).get_editing_project("p")
    assert len(script.requests) == 1


# --------------------------------------------------------------------------- responses


def test_get_parses_the_timeline_and_stamps_the_request_id() -> None:
    project = make_client(Script(ok(PROJECT))).get_editing_project("proj-1")
    assert project.timeline == {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m"}]}]}
    assert project.request_id == "req-ok"
    empty = {"Project": {"ProjectId": "p", "Timeline": ""}}
    assert make_client(Script(ok(empty))).get_editing_project("p").timeline is None


def test_search_fetches_every_page_and_is_lenient_about_numbers() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        params = verify(request)[1]
        assert params["PageSize"] == "100"
        start = (int(params["PageNo"]) - 1) * 100
        items = [
            {"ProjectId": f"p{i}", "Duration": "9.42", "Title": "t"}
            for i in range(start, min(start + 100, 250))
        ]
        return ok({"Total": "250", "ProjectList": {"Project": items}})

    script = Script(page)
    projects = make_client(script).search_editing_projects(title="t")
    assert [p.project_id for p in projects] == [f"p{i}" for i in range(250)]
    assert projects[0].duration == pytest.approx(9.42)
    assert [dict(r.url.params)["PageNo"] for r in script.requests] == ["1", "2", "3"]


def test_search_stops_on_a_short_page_even_without_total() -> None:
    script = Script(ok({"ProjectList": {"Project": [{"ProjectId": "a"}]}}))
    assert [p.project_id for p in make_client(script).search_editing_projects()] == ["a"]
    assert len(script.requests) == 1


def test_search_of_nothing() -> None:
    script = Script(ok({"Total": 0, "ProjectList": {}}))
    assert make_client(script).search_editing_projects(status="Producing") == []


def test_produce_returns_media_id() -> None:
    result = make_client(Script(ok(PRODUCED))).produce_editing_project_video(project_id="proj-1")
    assert (result.media_id, result.project_id, result.request_id) == (
        "media-1",
        "proj-1",
        "req-ok",
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.produce_editing_project_video(title="no project, no timeline"),
        lambda c: c.delete_editing_projects([]),
        lambda c: c.delete_editing_projects(["a,b"]),
        lambda c: c.search_editing_projects(status="Done"),
        lambda c: c.add_editing_project(title=""),
    ],
)
def test_bad_arguments_never_reach_the_wire(call: Callable[[VodClient], Any]) -> None:
    script = Script(ok())
    with pytest.raises(ValueError):
        call(make_client(script))
    assert script.requests == []


def test_unexpected_success_shape_of_produce_is_ambiguous() -> None:
    with pytest.raises(VodTransportError) as info:
        make_client(Script(ok({"Nothing": 1}))).produce_editing_project_video(project_id="p")
    assert info.value.ambiguous and info.value.code == "InvalidResponse"
    assert "GetEditingProject" in str(info.value)


# --------------------------------------------------------------------------- errors & retries


def test_api_error_fields() -> None:
    script = Script(api_error("InvalidEditingProject.NotFound", 404, "gone"))
    with pytest.raises(VodApiError) as info:
        make_client(script).get_editing_project("p")
    err = info.value
    assert (err.code, err.message, err.request_id, err.http_status, err.retryable) == (
        "InvalidEditingProject.NotFound",
        "gone",
        "req-InvalidEditingProject.NotFound",
        404,
        False,
    )
    assert len(script.requests) == 1
    assert "InvalidEditingProject.NotFound" in str(err) and "RequestId" in str(err)


@pytest.mark.parametrize(
    "code",
    [
        "InvalidParameter",
        "SignatureDoesNotMatch",
        "Forbidden.RAM",
        "InvalidTimeStamp.Expired",
        "MissingTitle",
    ],
)
def test_permanent_errors_are_not_retried(code: str) -> None:
    script = Script(api_error(code), ok(PROJECT))
    fake = FakeTime()
    with pytest.raises(VodApiError) as info:
        make_client(script, fake=fake).get_editing_project("p")
    assert info.value.code == code and not info.value.retryable
    assert len(script.requests) == 1 and fake.sleeps == []


def test_throttling_is_retried_with_backoff_and_fresh_signatures() -> None:
    script = Script(api_error("Throttling.User"), api_error("Throttling.User"), ok(PROJECT))
    fake = FakeTime()
    client = make_client(script, fake=fake)
    assert client.get_editing_project("p").project_id == "proj-1"
    assert fake.sleeps == pytest.approx([0.1, 0.2])  # rand 0.5 * 0.2 * 2**n
    nonces = [r.headers["x-acs-signature-nonce"] for r in script.requests]
    assert nonces == ["nonce-0", "nonce-1", "nonce-2"]
    stats = client.stats
    assert (stats.calls, stats.attempts, stats.retries, stats.throttled) == (1, 3, 2, 2)
    assert stats.errors == {"Throttling.User": 2}


def test_throttling_slows_the_bucket() -> None:
    client = make_client(Script(api_error("Throttling.User"), ok(PROJECT)), qps=40)
    client.get_editing_project("p")
    assert client._bucket.rate < 40


def test_retry_after_header_is_honoured() -> None:
    fake = FakeTime()
    script = Script(
        api_error("Throttling.User", headers={"x-acs-retry-after": "1500"}), ok(PROJECT)
    )
    make_client(script, fake=fake).get_editing_project("p")
    assert fake.sleeps == [1.5]


@pytest.mark.parametrize(
    "code,status",
    [
        ("ServiceUnavailable", 503),
        ("ServiceUnAvailable", 503),
        ("InternalError", 500),
        ("UnknownError", 500),
        ("SignatureNonceUsed", 400),
        ("Rejected.Throttling", 400),
    ],
)
def test_transient_api_errors_are_retried_even_for_produce(code: str, status: int) -> None:
    # VOD answered with its error document: it did not process the request.
    script = Script(api_error(code, status), ok(PRODUCED))
    result = make_client(script).produce_editing_project_video(project_id="p")
    assert result.media_id == "media-1" and len(script.requests) == 2
    assert (
        script.requests[0].headers["x-acs-signature-nonce"]
        != script.requests[1].headers["x-acs-signature-nonce"]
    )


def test_attempts_are_capped_and_backoff_too() -> None:
    fake = FakeTime()
    script = Script(api_error("ServiceUnavailable", 503))
    client = make_client(
        script, fake=fake, rand=lambda: 1.0, retry=RetryPolicy(max_attempts=8, base=0.2, cap=1.0)
    )
    with pytest.raises(VodApiError) as info:
        client.get_editing_project("p")
    assert info.value.retryable and info.value.code == "ServiceUnavailable"
    assert len(script.requests) == 8
    assert fake.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0])


def _boom(exc_type: type[httpx.TransportError]) -> Handler:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"failed talking to {request.url}", request=request)

    return raise_it


AMBIGUOUS = [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteTimeout]
NOT_SENT = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout]


@pytest.mark.parametrize("exc_type", AMBIGUOUS)
@pytest.mark.parametrize("action", ["produce", "add"])
def test_ambiguous_failures_of_non_idempotent_calls_are_never_resent(
    exc_type: type[httpx.TransportError], action: str
) -> None:
    script = Script(_boom(exc_type), ok({**PRODUCED, **PROJECT}))
    client = make_client(script)
    with pytest.raises(VodTransportError) as info:
        if action == "produce":
            client.produce_editing_project_video(project_id="p")
        else:
            client.add_editing_project(title="t")
    err = info.value
    assert err.ambiguous and not err.retryable
    assert "may have taken effect" in str(err) and "GetEditingProject" in str(err)
    assert len(script.requests) == 1
    assert client.stats.ambiguous == 1


@pytest.mark.parametrize("exc_type", NOT_SENT)
def test_connect_failures_are_retried_even_for_produce(
    exc_type: type[httpx.TransportError],
) -> None:
    script = Script(_boom(exc_type), ok(PRODUCED))
    assert make_client(script).produce_editing_project_video(project_id="p").media_id == "media-1"
    assert len(script.requests) == 2


@pytest.mark.parametrize("exc_type", AMBIGUOUS + NOT_SENT)
def test_idempotent_calls_retry_every_transient_failure(
    exc_type: type[httpx.TransportError],
) -> None:
    script = Script(_boom(exc_type), _boom(exc_type), ok(PROJECT))
    assert make_client(script).get_editing_project("p").project_id == "proj-1"
    assert len(script.requests) == 3


def test_gateway_5xx_without_vod_document_is_ambiguous_for_produce_only() -> None:
    bad_gateway = httpx.Response(
        502, text="<html>bad gateway</html>", headers={"content-type": "text/html"}
    )
    script = Script(bad_gateway, ok(PRODUCED))
    with pytest.raises(VodTransportError) as info:
        make_client(script).produce_editing_project_video(project_id="p")
    assert info.value.ambiguous and info.value.http_status == 502
    assert len(script.requests) == 1
    script = Script(bad_gateway, ok(PROJECT))
    assert make_client(script).get_editing_project("p").project_id == "proj-1"


def test_non_json_4xx_is_a_plain_permanent_error() -> None:
    script = Script(httpx.Response(404, text="not here", headers={"content-type": "text/plain"}))
    with pytest.raises(VodApiError) as info:
        make_client(script).get_editing_project("p")
    assert info.value.code == "HTTP404" and not info.value.retryable
    assert len(script.requests) == 1


def test_garbled_success_is_retried_for_get_and_ambiguous_for_add() -> None:
    garbled = httpx.Response(200, text="<xml/>")
    assert make_client(Script(garbled, ok(PROJECT))).get_editing_project("p")
    with pytest.raises(VodTransportError) as info:
        make_client(Script(garbled, ok(PROJECT))).add_editing_project(title="t")
    assert info.value.ambiguous


def test_credentials_are_fetched_for_every_attempt() -> None:
    class Rotating:
        source = "test"

        def __init__(self) -> None:
            self.n = 0

        def get_credentials(self) -> Credentials:
            self.n += 1
            return Credentials(KEY_ID, SECRET, f"token-{self.n}")

    script = Script(api_error("Throttling"), ok(PROJECT))
    make_client(script, credentials=Rotating()).get_editing_project("p")
    tokens = [r.headers["x-acs-security-token"] for r in script.requests]
    assert tokens == ["token-1", "token-2"]


def test_retry_is_logged_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    make_client(Script(api_error("Throttling.User"), ok(PROJECT))).get_editing_project("p")
    assert (
        "GetEditingProject: Throttling.User (RequestId req-Throttling.User); retry 1/15"
        in caplog.text
    )


# --------------------------------------------------------------------------- concurrency


def test_parallelism_caps_requests_in_flight() -> None:
    in_flight, peak, lock = 0, 0, threading.Lock()
    full, release = threading.Event(), threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            if in_flight == 3:
                full.set()
        release.wait(5)
        with lock:
            in_flight -= 1
        return ok(PROJECT)

    client = make_client(handler, parallelism=3, qps=1e6)
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(client.get_editing_project, f"p{i}") for i in range(12)]
        assert full.wait(5)
        assert client._slots._value == 0  # type: ignore[attr-defined]  # the rest queue
        release.set()
        assert all(f.result(timeout=5).project_id == "proj-1" for f in futures)
    assert peak == 3


def test_stats_are_exact_under_threads() -> None:
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        project_id = verify(request)[1]["ProjectId"]
        with lock:
            seen[project_id] = seen.get(project_id, 0) + 1
            first = seen[project_id] == 1
        # Every third project is throttled on its first attempt only.
        return (
            api_error("Throttling.User") if first and int(project_id[1:]) % 3 == 0 else ok(PROJECT)
        )

    client = make_client(handler, parallelism=8)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(client.get_editing_project, [f"p{i}" for i in range(300)]))
    stats = client.stats
    assert (stats.calls, stats.attempts, stats.retries, stats.throttled) == (300, 400, 100, 100)
    assert stats.errors == {"Throttling.User": 100}


# --------------------------------------------------------------------------- redaction

REDACT_SECRET, REDACT_TOKEN = "RedactMe-S3cr3t+/=", "RedactMe-T0ken/+=="
REDACT = Credentials("LTAIredact", REDACT_SECRET, REDACT_TOKEN)


def _forbidden(requests: list[httpx.Request]) -> set[str]:
    from urllib.parse import quote, quote_plus

    values = {REDACT_SECRET, REDACT_TOKEN}
    for request in requests:
        params = dict(request.url.params)
        if "Signature" in params:
            values.add(params["Signature"])
        if "authorization" in request.headers:
            values.add(request.headers["authorization"].rsplit("Signature=", 1)[1])
            values.add(request.headers["authorization"])
        values.add(str(request.url))
    return values | {quote(v, safe="") for v in values} | {quote_plus(v) for v in values}


def _chain_text(exc: BaseException) -> str:
    texts, seen = [], set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        stack += [current.__cause__, current.__context__]
    return "\n".join(texts)


def _refused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signature_mismatch(request: httpx.Request) -> httpx.Response:
    # The real gateway echoes its string-to-sign, which for v2 holds the STS token.
    params = {k: v for k, v in request.url.params.multi_items() if k != "Signature"}
    echo = signing.rpc_string_to_sign("POST", params) if params.get("SecurityToken") else ""
    return api_error(
        "SignatureDoesNotMatch",
        400,
        f"Specified signature is not matched with our calculation. server string to sign is:{echo}",
    )


ERROR_PATHS: dict[str, Any] = {
    "api-error-echoing-string-to-sign": _signature_mismatch,
    "non-json-body": lambda r: httpx.Response(400, text=f"bad {r.url}"),
    "http-5xx": lambda r: httpx.Response(503, text=f"overloaded {r.url}"),
    "timeout": _boom(httpx.ReadTimeout),
    "connect-timeout": _boom(httpx.ConnectTimeout),
    "ambiguous-drop": _boom(httpx.RemoteProtocolError),
    "connection-refused": "real-socket",
}


@pytest.mark.parametrize("path", list(ERROR_PATHS))
@pytest.mark.parametrize("signature", ["v2", "v3"])
def test_no_secret_leaks_through_any_error_path(
    path: str, signature: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    captured: list[httpx.Request] = []
    kwargs: dict[str, Any] = {"retry": RetryPolicy(max_attempts=2)}
    if ERROR_PATHS[path] == "real-socket":
        fake = FakeTime()
        client = VodClient(
            credentials=REDACT,
            signature=signature,  # type: ignore[arg-type]
            endpoint=f"http://127.0.0.1:{_refused_port()}",
            clock=fake.time,
            monotonic=fake.monotonic,
            sleep=fake.sleep,
            **kwargs,
        )
        original = client._http.send

        def capture(request: httpx.Request, **kw: Any) -> httpx.Response:
            captured.append(request)  # signed in place by the auth flow during the send
            return original(request, **kw)

        client._http.send = capture  # type: ignore[method-assign]
    else:
        handler = ERROR_PATHS[path]

        def recording(request: httpx.Request) -> httpx.Response:
            captured.append(request)
            return handler(request)  # type: ignore[no-any-return]

        client = make_client(recording, signature=signature, credentials=REDACT, **kwargs)
    with pytest.raises((VodApiError, VodTransportError)) as info:
        client.produce_editing_project_video(project_id="p", title="t")
    assert captured, "the request was built and signed"
    text = _chain_text(info.value) + "\n" + caplog.text
    text += "\n".join(str(r.args) for r in caplog.records)
    assert "RedactMe" not in text  # the secret and the token, in any encoding
    for forbidden in _forbidden(captured):
        assert forbidden not in text, (path, forbidden)


def test_no_secret_in_credentials_errors(tmp_path: Path) -> None:
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(
        json.dumps(
            {
                "current": "p",
                "profiles": [
                    {
                        "name": "p",
                        "mode": "StsToken",
                        "access_key_secret": REDACT_SECRET,
                        "sts_token": REDACT_TOKEN,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    for use_sdk in (False, True):
        with pytest.raises(CredentialsError) as info:
            resolve_credentials(
                {
                    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
                    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": REDACT_SECRET,
                },
                tmp_path,
                use_sdk_chain=use_sdk,
            )
        assert "RedactMe" not in _chain_text(info.value)

    class Failing:
        source = "test"

        def get_credentials(self) -> Credentials:
            raise CredentialsError("refresh failed")

    with pytest.raises(CredentialsError):
        make_client(Script(ok()), credentials=Failing()).get_editing_project("p")


def test_no_secret_in_endpoint_errors() -> None:
    for endpoint in (
        f"https://LTAIredact:{REDACT_SECRET}@vod.example.com",
        "http://vod.example.com",
        f"https://vod.example.com/?t={REDACT_TOKEN}",
    ):
        with pytest.raises(ConfigError) as info:
            VodClient(credentials=REDACT, endpoint=endpoint)
        assert "RedactMe" not in _chain_text(info.value)


def test_client_and_auth_reprs_hide_secrets() -> None:
    from reconciler.adapters.vod.auth import make_auth

    client = make_client(Script(ok()), credentials=REDACT)
    for text in (repr(client), str(client), repr(make_auth("v2", REDACT, "GetEditingProject"))):
        assert "RedactMe" not in text


def test_search_times_accept_aware_datetimes_only() -> None:
    from datetime import datetime, timedelta, timezone

    script = Script(ok({"Total": 0}))
    tz = timezone(timedelta(hours=8))
    make_client(script).search_editing_projects(start_time=datetime(2024, 1, 1, 8, tzinfo=tz))
    assert dict(script.requests[0].url.params)["StartTime"] == "2024-01-01T00:00:00Z"
    with pytest.raises(ValueError):
        make_client(script).search_editing_projects(end_time=datetime(2024, 1, 1))
