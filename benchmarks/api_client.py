"""A small client for steelqc's REST API on loopback: token auth, JSON answers, multipart uploads.

The benchmarks load the stack through it and the fault and load tests (tests/chaos) drive
their own stack with it, so both speak to the API the same way an integrator's script would.
Standard library only.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid


def multipart_body(*, files: list[tuple[str, str, bytes]], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its Content-Type for ``fields`` and ``files``
    (``(field name, file name, content)``, a field may repeat)."""
    boundary = uuid.uuid4().hex
    parts = [
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
        for name, value in (fields or {}).items()
    ]
    parts += [
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n"
        for field, filename, content in files
    ]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class ApiClient:
    """Requests to ``http://127.0.0.1:PORT`` as the owner of ``token``.

    ``keep_alive`` reuses one connection (the benchmarks' clients); without it every request
    opens its own, so a restarted server is never met on a stale connection (the fault tests).
    ``retries`` repeats a request whose connection failed; 0 lets the failure through.
    """

    def __init__(self, port: int, token: str, *, timeout: float = 60, keep_alive: bool = False, retries: int = 0):
        self.port, self.token, self.timeout = port, token, timeout
        self.keep_alive, self.retries = keep_alive, retries
        self._connection: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """``(status, decoded JSON body or None)``."""
        headers = {"Authorization": f"Token {self.token}", **(headers or {})}
        for attempt in range(self.retries + 1):
            try:
                connection = self._open()
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, json.loads(response.read() or b"null")
            except (ConnectionError, http.client.HTTPException):
                self._close()
                if attempt == self.retries:
                    raise
                time.sleep(0.2)
            finally:
                if not self.keep_alive:
                    self._close()
        raise AssertionError("unreachable")

    def upload(self, content: bytes, filename: str, *, source: str = "", wait: float = 0):
        """``POST /api/v1/images/`` with one file; ``wait`` seconds for the prediction."""
        body, content_type = multipart_body(files=[("file", filename, content)],
                                            fields={"source": source} if source else None)
        query = f"?wait={wait}" if wait else ""
        return self.request("POST", f"/api/v1/images/{query}", body, {"Content-Type": content_type})
