"""The emulator over real sockets: keep-alive, dropped answers, callbacks, concurrency, stop."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from reconciler.adapters.emulator import Emulator, EmulatorConfig, EmulatorServer
from reconciler.adapters.emulator.testing import SignedClient

TIMELINE = json.dumps({"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m"}]}]})


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


class Receiver:
    """A loopback HTTP endpoint that records callback POSTs and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers.items()), json.loads(body)))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/vod/callback"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    try:
        yield rec
    finally:
        rec.close()


def serve(config: EmulatorConfig) -> Iterator[tuple[Emulator, EmulatorServer]]:
    emu = Emulator(config=config)
    server = EmulatorServer(emu).start()
    try:
        yield emu, server
    finally:
        server.stop()
        emu.close()


@pytest.fixture
def served() -> Iterator[tuple[Emulator, EmulatorServer]]:
    yield from serve(
        EmulatorConfig(produce_delay=0.05, callback_retry_interval=0.01, callback_private_key="pk")
    )


def client_for(emu: Emulator, server: EmulatorServer, signature: str = "v3") -> SignedClient:
    creds = emu.demo_credentials
    http = httpx.Client(base_url=server.url, timeout=10)
    return SignedClient(http, creds.access_key_id, creds.access_key_secret, signature=signature)


def test_keep_alive_requests_both_signatures(served: tuple[Emulator, EmulatorServer]) -> None:
    emu, server = served
    assert server.url.startswith("http://127.0.0.1:")
    for version in ("v3", "v2"):
        client = client_for(emu, server, version)
        with client.http:
            doc = client.call("AddEditingProject", Title="über ~ *x*")
            pid = str(doc["Project"]["ProjectId"])  # type: ignore[index]
            got = client.call("GetEditingProject", ProjectId=pid)
            assert got["Project"]["Title"] == "über ~ *x*"  # type: ignore[index]
            form = client.request(
                "UpdateEditingProject", {"ProjectId": pid, "Timeline": TIMELINE}, form=True
            )
            assert form.status_code == 200, form.text


def test_dropped_answer_closes_the_socket_after_processing() -> None:
    config = EmulatorConfig(drop_rate=1.0, drop_actions=frozenset({"AddEditingProject"}))
    for emu, server in serve(config):
        client = client_for(emu, server)
        with client.http:
            with pytest.raises(httpx.RemoteProtocolError):
                client.request("AddEditingProject", {"Title": "maybe"})
            assert [p.title for p in emu.projects()] == ["maybe"]
            assert client.request("SearchEditingProject").json()["Total"] == 1


def test_callback_is_posted_to_a_loopback_url(
    served: tuple[Emulator, EmulatorServer], receiver: Receiver
) -> None:
    emu, server = served
    client = client_for(emu, server)
    user_data = json.dumps({"MessageCallback": {"CallbackURL": receiver.url}})
    with client.http:
        doc = client.call("ProduceEditingProjectVideo", Timeline=TIMELINE, UserData=user_data)
    wait_for(lambda: bool(receiver.received))  # settled by the server thread, no request needed
    headers, event = receiver.received[0]
    assert event["EventType"] == "ProduceMediaComplete" and event["Status"] == "success"
    assert (event["MediaId"], event["ProjectId"]) == (doc["MediaId"], doc["ProjectId"])
    ts = headers["X-VOD-TIMESTAMP"]
    assert headers["X-VOD-SIGNATURE"] == hashlib.md5(f"{receiver.url}|{ts}|pk".encode()).hexdigest()
    wait_for(lambda: emu.events()[0].delivery == "delivered")
    assert emu.events()[0].attempts == 1


def test_failing_callback_is_retried_three_times(
    served: tuple[Emulator, EmulatorServer], receiver: Receiver
) -> None:
    emu, server = served
    receiver.status = 500
    client = client_for(emu, server)
    user_data = json.dumps({"MessageCallback": {"CallbackURL": receiver.url}})
    with client.http:
        client.call("ProduceEditingProjectVideo", Timeline=TIMELINE, UserData=user_data)
    wait_for(lambda: bool(emu.events()) and emu.events()[0].delivery == "failed")
    assert len(receiver.received) == 3 and emu.events()[0].last_error == "HTTP 500"


def test_non_loopback_callback_is_recorded_not_called(
    served: tuple[Emulator, EmulatorServer],
) -> None:
    emu, server = served
    client = client_for(emu, server)
    user_data = json.dumps({"MessageCallback": {"CallbackURL": "https://hooks.example.com/x"}})
    with client.http:
        client.call("ProduceEditingProjectVideo", Timeline=TIMELINE, UserData=user_data)
    wait_for(lambda: bool(emu.events()))
    [event] = emu.events()
    assert (event.delivery, event.attempts, event.callback_url) == (
        "skipped",
        0,
        "https://hooks.example.com/x",
    )


def test_concurrent_clients(served: tuple[Emulator, EmulatorServer]) -> None:
    emu, server = served
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        client = client_for(emu, server)
        with client.http:
            for i in range(25):
                code = client.request("AddEditingProject", {"Title": f"p{i}"}).status_code
                with lock:
                    statuses.append(code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 200
    assert emu.counts().of("AddEditingProject") == 200 and len(emu.projects()) == 200


def test_inspection_endpoints_over_http(served: tuple[Emulator, EmulatorServer]) -> None:
    emu, server = served
    client = client_for(emu, server)
    with client.http:
        client.call("SearchEditingProject")
        calls = client.http.get("/_emulator/calls").json()["Calls"]
        assert [c["Action"] for c in calls] == ["SearchEditingProject"]
        assert client.http.get("/_emulator/counts").json()["ByAction"] == {
            "SearchEditingProject": 1
        }


def test_stop_closes_idle_keep_alive_connections() -> None:
    emu = Emulator()
    server = EmulatorServer(emu).start()
    try:
        client = client_for(emu, server)
        assert client.request("SearchEditingProject").status_code == 200  # connection stays open
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
        with pytest.raises(httpx.TransportError):
            client.request("SearchEditingProject")
        client.http.close()
    finally:
        server.stop()
        emu.close()
