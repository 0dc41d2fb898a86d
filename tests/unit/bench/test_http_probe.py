"""The benchmark's lean HTTP client against a real local socket server."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.http_probe import HttpProbe, ProbeError


async def _serve(responses: list[bytes]) -> tuple[asyncio.Server, int, list[bytes]]:
    """A server answering each request with the next canned response, on one connection."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while responses:
            try:
                requests.append(await reader.readuntil(b"\r\n\r\n"))
            except asyncio.IncompleteReadError:
                break
            writer.write(responses.pop(0))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port, requests


def _response(status: int, body: object) -> bytes:
    data = json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
    return head.encode() + f"Content-Length: {len(data)}\r\n\r\n".encode() + data


async def test_requests_reuse_one_connection_and_carry_the_headers() -> None:
    server, port, requests = await _serve([_response(200, {"a": 1}), _response(404, {"b": 2})])
    probe = HttpProbe("127.0.0.1", port, {"Authorization": "Bearer t"}, connections=1)
    try:
        assert await probe.get_json("/x") == (200, {"a": 1})
        assert await probe.get_json("/y") == (404, {"b": 2})
    finally:
        await probe.close()
        server.close()
    assert [r.split(b"\r\n")[0] for r in requests] == [b"GET /x HTTP/1.1", b"GET /y HTTP/1.1"]
    assert all(b"Authorization: Bearer t\r\n" in r for r in requests)


async def test_a_chunked_response_or_a_closed_connection_is_a_probe_error() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    server, port, _ = await _serve([chunked])
    probe = HttpProbe("127.0.0.1", port, {}, connections=1)
    try:
        with pytest.raises(ProbeError, match="transfer-encoding"):
            await probe.get_json("/x")
        # The broken connection was dropped; the server has closed: a new one fails too.
        server.close()
        await server.wait_closed()
        with pytest.raises(ProbeError):
            await probe.get_json("/x")
    finally:
        await probe.close()
