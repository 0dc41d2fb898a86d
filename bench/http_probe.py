"""A lean HTTP/1.1 GET client for a benchmark's pollers, so the load generator stays small.

httpx spends several hundred microseconds of Python per request; on a 2-core machine
shared with the service under test, that is CPU taken from the service, and it shows up
in the service's latency. This client keeps connections alive in a pool and sends
pre-built request bytes; it reads only `Content-Length` bodies (what the services send).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class ProbeError(RuntimeError):
    """The connection broke or the response was not one this client reads."""


class HttpProbe:
    def __init__(self, host: str, port: int, headers: dict[str, str], connections: int) -> None:
        self._host, self._port = host, port
        self._header_lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]
        self._idle = asyncio.Queue()
        for _ in range(connections):
            self._idle.put_nowait(None)  # opened on first use

    async def get_json(self, path: str) -> tuple[int, Any]:
        """GET `path`; the status and the decoded JSON body. Raises ProbeError."""
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\n{self._header_lines}\r\n"
        ).encode()
        connection = await self._idle.get()
        try:
            if connection is None:
                connection = await asyncio.open_connection(self._host, self._port)
            reader, writer = connection
            writer.write(request)
            status, body = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ProbeError) as error:
            if connection is not None:
                connection[1].close()
            self._idle.put_nowait(None)
            raise ProbeError(f"GET {path}: {error!r}") from error
        self._idle.put_nowait(connection)
        return status, json.loads(body) if body else None

    async def close(self) -> None:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if connection is not None:
                connection[1].close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    length = None
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding":
            raise ProbeError(f"unsupported transfer-encoding {value.strip()}")
    if length is None:
        raise ProbeError("response without Content-Length")
    return status, await reader.readexactly(length)
