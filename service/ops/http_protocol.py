"""uvicorn HTTP protocols whose own 400s (a request the parser rejects before the app sees
it: a malformed request line, bad headers) carry the error envelope, like every other error.

``nmtune serve`` runs uvicorn with ``http=ENVELOPE_PROTOCOL`` (httptools when installed, as
uvicorn's ``auto`` picks, else h11).
"""

from __future__ import annotations

import asyncio
import json
from importlib.util import find_spec

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def _body(msg: str) -> bytes:
    return json.dumps({"error": "BadRequest", "detail": msg, "field": None}).encode()


class EnvelopeH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        body = _body(msg)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


ENVELOPE_PROTOCOL: type[asyncio.Protocol] = EnvelopeH11Protocol

if find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class EnvelopeHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            body = _body(msg)
            content = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
            self.transport.write(b"".join(content))
            self.transport.close()

    ENVELOPE_PROTOCOL = EnvelopeHttpToolsProtocol
