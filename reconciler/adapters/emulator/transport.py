"""``httpx`` transport that hands requests to an in-process ``Emulator`` (no sockets)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx

from reconciler.adapters.emulator.service import Emulator


class EmulatorTransport(httpx.BaseTransport):
    """Use as ``httpx.Client(transport=EmulatorTransport(emu), base_url="http://vod.emulator")``.

    A dropped answer (fault injection) surfaces as ``httpx.RemoteProtocolError`` raised *after*
    the emulator processed the request, exactly like a connection lost on the way back.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        query = parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True)
        headers = [
            (k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.headers.raw
        ]
        answer = self.emulator.handle(request.method, request.url.path, query, headers, body)
        if answer.drop:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            answer.status, headers=answer.headers, content=answer.body, request=request
        )
