"""VodClient against the emulator's real HTTP server: every operation in both signature
versions, a dropped answer, and 300 concurrent calls under throttling staying under the QPS."""

from __future__ import annotations

import random
import threading
import time
import uuid
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.emulator import (
    Emulator,
    EmulatorConfig,
    EmulatorResponse,
    EmulatorServer,
)
from reconciler.adapters.emulator.apierrors import (
    JSON_CONTENT_TYPE,
    THROTTLED,
    ApiFault,
    error_body,
)
from reconciler.adapters.vod.client import VodClient
from reconciler.adapters.vod.credentials import Credentials
from reconciler.adapters.vod.ratelimit import RetryPolicy
from reconciler.errors import VodApiError, VodTransportError

AK = Credentials("LTAIfunctest0001", "func-Secret+/=~*0001")
STS = Credentials("STS.functest0002", "sts-Secret+/=0002", "CAIS+sts/token==0002")
TIMELINE = {
    "VideoTracks": [
        {
            "VideoTrackClips": [
                {"MediaId": "media-a", "In": 0, "Out": 5.5},
                {
                    "MediaId": "media-b",
                    "Effects": [{"Type": "Text", "Content": "你好, 50% *off* A&B=C ~"}],
                },
            ]
        }
    ],
}


def window_max(times: Sequence[float], window: float = 1.0) -> int:
    """The most events in any half-open window [t, t + window)."""
    ordered = sorted(times)
    return max((bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmulatorServer]:
    emulator = Emulator(
        tmp_path / "emu",
        access_keys={AK.access_key_id: AK.access_key_secret},
        config=EmulatorConfig(produce_delay=60.0),
    )
    assert STS.security_token is not None
    emulator.add_access_key(STS.access_key_id, STS.access_key_secret, STS.security_token)
    with EmulatorServer(emulator) as running:
        yield running
    emulator.close()


@pytest.mark.parametrize("credentials", [AK, STS], ids=["access-key", "sts"])
@pytest.mark.parametrize("signature", ["v3", "v2"])
def test_every_operation_round_trips(
    server: EmulatorServer, signature: str, credentials: Credentials
) -> None:
    emulator: Emulator = server.emulator
    with VodClient(endpoint=server.url, credentials=credentials, signature=signature) as client:  # type: ignore[arg-type]
        title = f"宣传片 v1.2 *final* ~cut +{signature} {uuid.uuid4().hex[:6]}"
        created = client.add_editing_project(
            title=title, description="a+b c%d", timeline=TIMELINE, cover_url="https://x/c~1.png?a=1"
        )
        assert created.title == title and created.status == "Normal" and created.request_id

        fetched = client.get_editing_project(created.project_id)
        assert fetched.timeline == TIMELINE
        assert (fetched.description, fetched.cover_url) == ("a+b c%d", "https://x/c~1.png?a=1")

        changed = {"VideoTracks": [{"VideoTrackClips": [{"MediaId": "media-c"}]}]}
        assert client.update_editing_project(
            created.project_id, timeline=changed, description="tilde~ star* slash/ plus+"
        )
        fetched = client.get_editing_project(created.project_id)
        assert fetched.timeline == changed and fetched.description == "tilde~ star* slash/ plus+"

        found = client.search_editing_projects(
            title=title, status=["Normal", "Producing"], sort_by="CreationTime:Desc"
        )
        assert [p.project_id for p in found] == [created.project_id]

        produced = client.produce_editing_project_video(
            project_id=created.project_id,
            title=title,
            produce_config={"TemplateGroupId": "tg-1"},
            media_metadata={"Title": "成片", "Tags": "a,b"},
            user_data={"Extend": {"commit": "a1b2c3d", "note": "x y+z"}},
        )
        assert produced.media_id and produced.project_id == created.project_id
        assert client.get_editing_project(created.project_id).status == "Producing"

        other = client.add_editing_project(title=f"{title} other")
        assert client.delete_editing_projects([created.project_id, other.project_id])
        with pytest.raises(VodApiError) as info:
            client.get_editing_project(created.project_id)
        assert info.value.code == "InvalidEditingProject.NotFound"
        assert client.stats.retries == 0

    calls = emulator.calls()
    assert {c.signature_version for c in calls} == {signature}
    assert {c.access_key_id for c in calls} == {credentials.access_key_id}
    assert [c.code for c in calls].count("OK") == len(calls) - 1


def test_a_dropped_production_is_reported_ambiguous_and_never_resent(tmp_path: Path) -> None:
    config = EmulatorConfig(drop_rate=1.0, drop_actions=frozenset({"ProduceEditingProjectVideo"}))
    emulator = Emulator(
        tmp_path / "emu", access_keys={AK.access_key_id: AK.access_key_secret}, config=config
    )
    with (
        EmulatorServer(emulator) as server,
        VodClient(endpoint=server.url, credentials=AK) as client,
    ):
        project = client.add_editing_project(title="drop me", timeline=TIMELINE)
        with pytest.raises(VodTransportError) as info:
            client.produce_editing_project_video(project_id=project.project_id)
        assert info.value.ambiguous
        assert "GetEditingProject" in str(info.value)
        # It did take effect, exactly once: the reconciler must look before resubmitting.
        assert emulator.counts().of("ProduceEditingProjectVideo") == 1
        assert client.get_editing_project(project.project_id).status == "Producing"
    emulator.close()


class ThrottlingGateway:
    """Sits in front of the emulator like VOD's API gateway: a seeded share of API requests
    is answered Throttling.User before reaching the service; every arrival is timed."""

    def __init__(self, emulator: Emulator, rate: float, seed: int) -> None:
        self.emulator = emulator
        self._rate = rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.arrivals: list[float] = []
        self.throttled = 0

    def handle(
        self, method: str, path: str, query: Any, headers: Any, body: bytes = b""
    ) -> EmulatorResponse:
        if path.startswith("/_emulator"):
            return self.emulator.handle(method, path, query, headers, body)
        with self._lock:
            self.arrivals.append(time.time())
            throttle = self._rng.random() < self._rate
            self.throttled += throttle
        if not throttle:
            return self.emulator.handle(method, path, query, headers, body)
        request_id = str(uuid.uuid4()).upper()
        doc = error_body(ApiFault(*THROTTLED), request_id, self.emulator.config.host_id)
        headers_out = [("Content-Type", JSON_CONTENT_TYPE), ("x-acs-request-id", request_id)]
        return EmulatorResponse(400, headers_out, doc, request_id=request_id)

    def settle(self) -> int:
        return self.emulator.settle()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_300_concurrent_calls_under_throttling_stay_under_the_qps(tmp_path: Path) -> None:
    qps, workers, total = 40, 16, 300
    # The emulator enforces the same limit itself (Throttling.User above 40/s), and the
    # gateway throttles 20% of requests at random on top.
    emulator = Emulator(
        tmp_path / "emu",
        access_keys={AK.access_key_id: AK.access_key_secret},
        config=EmulatorConfig(qps_limit=qps, produce_delay=60.0),
    )
    gateway = ThrottlingGateway(emulator, rate=0.2, seed=20240101)
    server = EmulatorServer(gateway)  # type: ignore[arg-type]
    server.start()
    try:
        with VodClient(
            endpoint=server.url,
            credentials=AK,
            qps=qps,
            parallelism=8,
            retry=RetryPolicy(max_attempts=10),
        ) as client:
            seeds = [client.add_editing_project(title=f"seed {i}").project_id for i in range(4)]

            def one(i: int) -> str:
                project_id = seeds[i % len(seeds)]
                if i % 5 == 0:
                    return client.add_editing_project(title=f"load {i}").project_id
                if i % 5 == 1:
                    return client.update_editing_project(project_id, description=f"d{i}")
                if i % 5 == 2:
                    return str(len(client.search_editing_projects(title="seed")))
                return client.get_editing_project(project_id).project_id

            started = time.monotonic()
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(one, range(total)))
            elapsed = time.monotonic() - started
            stats = client.stats
    finally:
        server.stop()

    assert len(results) == total and all(results)  # every call succeeded
    served = [c.time for c in emulator.calls()]
    own_throttles = sum(1 for c in emulator.calls() if c.code == "Throttling.User")
    emulator.close()
    assert stats.calls == total + len(seeds)
    assert stats.throttled == gateway.throttled + own_throttles > 0
    assert stats.retries == stats.throttled
    assert stats.attempts == len(gateway.arrivals)
    busiest_at_server = window_max(gateway.arrivals)
    assert busiest_at_server <= qps
    assert window_max(served) <= qps
    assert stats.max_qps <= qps
    print(  # the numbers for the record (pytest -s)
        f"\n300-call load: {elapsed:.1f}s, attempts={stats.attempts}, retries={stats.retries}, "
        f"throttled={stats.throttled} (gateway {gateway.throttled}, emulator {own_throttles}), "
        f"max 1-s window at server={busiest_at_server}, client max_qps={stats.max_qps}"
    )
