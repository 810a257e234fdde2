"""A real, local Moesif-compatible collector: ``POST /v1/events/batch`` into SQLite.

Answers as the Moesif collection API does: 201 for a stored batch (and for user, company and subscription
updates, kept in memory as ``Collector.profiles``), 400 with a reason for a malformed
one (not JSON, not an array, or an event that breaks SPEC §2 / ``schemas/api_event.avsc``), 401 without
an application id (or with the wrong one, when the collector is given one), 413 past 50 MB.
``GET /v1/stats`` returns the counts tests and ``run_local.sh`` wait on; ``GET /health`` answers 200; ``GET /`` is
the report as a page (``devtools/collector/page.py``), with the dead letters of the directory it is given.
Fault modes for tests (``devtools/collector/faults.py``): ``collector.faults`` or ``POST /admin/faults``.
"""
from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from devtools.collector.faults import FaultPlan
from devtools.collector.page import build_page
from devtools.collector.store import EventStore
from devtools.local_services import dead_letters_in
from transforms.model.event import validate_event

MAX_BATCH_BYTES = 50 * 1024 * 1024
PROFILE_PATHS = frozenset(f"/v1/{kind}{suffix}" for kind in ("users", "companies", "subscriptions")
                          for suffix in ("", "/batch"))  # Moesif: 50 MB per batch "regardless if compression is used"


class _BatchRejected(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sink's connection pool expects
    # The reply's headers and body are two writes: with Nagle's algorithm the body waited for the client's delayed
    # ACK, ~40 ms per batch, which capped a streaming benchmark at ~1 000 events/s.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        """Quiet: a request log line per batch would drown the report."""

    def do_GET(self) -> None:
        if self.path == "/" or self.path.startswith("/?"):
            page = build_page(self.server.store, dead_letters_in(self.server.dead_letter_dir)
                              if self.server.dead_letter_dir else [])
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif self.path == "/health":
            self._reply(200, {"status": "ok"})
        elif self.path == "/v1/stats":
            self._reply(200, {**self.server.store.counts(), **self.server.request_counts()})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/events/batch":
            self._handle_other_post()
            return
        self.server.batch_started()
        try:
            self._handle_batch()
        finally:
            self.server.batch_ended()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle_other_post(self) -> None:
        body = self._read_body()
        if self.path.startswith("/admin/faults"):
            self._configure_faults(body)
        elif self.path.rstrip("/") in PROFILE_PATHS:
            self._store_profiles(body)
        else:
            self._reply(404, {"error": "not found"})

    def _store_profiles(self, body: bytes) -> None:
        """User, company and subscription updates: kept as received (the ingest relays them here)."""
        application_id = self.headers.get("X-Moesif-Application-Id")
        if not application_id or (self.server.application_id and application_id != self.server.application_id):
            self._reply(401, {"error": "missing or unknown X-Moesif-Application-Id"})
            return
        try:
            value = orjson.loads(self._decompress(body))
        except (orjson.JSONDecodeError, _BatchRejected) as exc:
            self._reply(400, {"error": f"body is not JSON: {exc}"})
            return
        self.server.add_profiles(self.path.rstrip("/"), value if isinstance(value, list) else [value])
        self._reply(201, {})

    def _handle_batch(self) -> None:
        fault = self.server.faults.next_fault()
        if fault is not None and fault.kind == "close":  # mid-request: the body is never read
            self.server.count_request("closed")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = self._read_body()
        if fault is not None and fault.kind == "status":
            self.server.count_request(fault.status)
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            answer: dict[str, Any] = {"error": "injected fault"}
            if fault.echo_headers_after is not None:
                answer = {"padding": "." * fault.echo_headers_after, "request_headers": dict(self.headers)}
            self._reply(fault.status, answer, extra)
            return
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.stall_secs)
        try:
            events = self._accept(body)
        except _BatchRejected as rejected:
            self.server.count_request(rejected.status)
            self._reply(rejected.status, {"error": rejected.reason})
            return
        self.server.store.add(events)
        self.server.count_request(201)
        self._reply(201, {})

    def _accept(self, body: bytes) -> list[dict[str, Any]]:
        application_id = self.headers.get("X-Moesif-Application-Id")
        if not application_id:
            raise _BatchRejected(401, "missing X-Moesif-Application-Id header")
        if self.server.application_id and application_id != self.server.application_id:
            raise _BatchRejected(401, "unknown application id")
        if len(body) > MAX_BATCH_BYTES:
            raise _BatchRejected(413, f"batch of {len(body)} bytes exceeds {MAX_BATCH_BYTES}")
        body = self._decompress(body)
        try:
            events = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _BatchRejected(400, f"body is not JSON: {exc}") from None
        if not isinstance(events, list):
            raise _BatchRejected(400, "body must be a JSON array of events")
        for index, event in enumerate(events):
            problems = validate_event(event)
            if problems:
                raise _BatchRejected(400, f"event {index}: {'; '.join(problems)}")
        return events

    def _decompress(self, body: bytes) -> bytes:
        encoding = (self.headers.get("Content-Encoding") or "identity").lower()
        try:
            if encoding == "gzip":
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif encoding == "deflate":
                inflater = zlib.decompressobj()
            elif encoding == "identity":
                return body
            else:
                raise _BatchRejected(400, f"unsupported Content-Encoding {encoding!r}")
            inflated = inflater.decompress(body, MAX_BATCH_BYTES + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise _BatchRejected(400, f"body does not decompress: {exc}") from None
        if len(inflated) > MAX_BATCH_BYTES:
            raise _BatchRejected(413, f"batch inflates past {MAX_BATCH_BYTES} bytes")
        return inflated

    def _configure_faults(self, body: bytes) -> None:
        """``POST /admin/faults`` with FaultPlan.configure's fields as JSON; ``/admin/faults/clear`` resets."""
        try:
            if self.path.rstrip("/").endswith("/clear"):
                self.server.faults.clear()
            else:
                self.server.faults.configure(**orjson.loads(body or b"{}"))
        except (TypeError, orjson.JSONDecodeError) as exc:
            self._reply(400, {"error": str(exc)})
            return
        self._reply(200, {"status": "ok"})

    def _reply(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, orjson.dumps(payload), "application/json", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: EventStore, application_id: str | None,
                 dead_letter_dir: Path | None):
        super().__init__(address, _Handler)
        self.store = store
        self.dead_letter_dir = dead_letter_dir
        self.application_id = application_id
        self.faults = FaultPlan()
        self._counts_lock = threading.Lock()
        self._requests_by_status: dict[int | str, int] = {}
        self._batches_in_progress = 0
        self._most_batches_in_progress = 0
        self._connections = 0
        self._open_connections: set[socket.socket] = set()
        self.profiles: list[tuple[str, dict[str, Any]]] = []

    def add_profiles(self, path: str, items: list[Any]) -> None:
        with self._counts_lock:
            self.profiles.extend((path, item) for item in items)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._counts_lock:
            self._connections += 1  # one per accepted TCP connection: keep-alive tests count them
            self._open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._counts_lock:
            self._open_connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Ends every kept-alive connection: a stopped collector must not go on serving them from their threads
        (a client's pooled connection would reach a stopped collector's store)."""
        with self._counts_lock:
            connections, self._open_connections = self._open_connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client: nothing left to end
                connection.shutdown(socket.SHUT_RDWR)

    def count_request(self, status: int | str) -> None:
        with self._counts_lock:
            self._requests_by_status[status] = self._requests_by_status.get(status, 0) + 1

    def batch_started(self) -> None:
        with self._counts_lock:
            self._batches_in_progress += 1
            self._most_batches_in_progress = max(self._most_batches_in_progress, self._batches_in_progress)

    def batch_ended(self) -> None:
        with self._counts_lock:
            self._batches_in_progress -= 1

    def request_counts(self) -> dict[str, Any]:
        with self._counts_lock:
            by_status = dict(self._requests_by_status)
            most_at_once = self._most_batches_in_progress
            connections = self._connections
        return {"requests": sum(by_status.values()), "requests_by_status": {str(k): v for k, v in by_status.items()},
                "most_batch_requests_at_once": most_at_once, "connections": connections}


class Collector:
    """The collector on ``host:port`` (port 0 picks a free one), serving from a background thread."""

    def __init__(self, db_path: str, host: str = "127.0.0.1", port: int = 0, application_id: str | None = None,
                 dead_letter_dir: Path | None = None):
        self.store = EventStore(db_path)
        self._server = _Server((host, port), self.store, application_id, dead_letter_dir)
        self.faults = self._server.faults
        self._thread: threading.Thread | None = None

    def request_counts(self) -> dict[str, Any]:
        """Requests answered so far, in total and by status (``closed`` for dropped connections)."""
        return self._server.request_counts()

    @property
    def profiles(self) -> list[tuple[str, dict[str, Any]]]:
        """User, company and subscription updates received, as (path, object)."""
        return list(self._server.profiles)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Collector:
        self._thread = threading.Thread(target=self._server.serve_forever, name="collector", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
