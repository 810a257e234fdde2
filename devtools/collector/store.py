"""The collector's SQLite store: one row per received event, with the columns the report needs."""
from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

from transforms.model.event import parse_iso_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    transaction_id TEXT NOT NULL,
    request_time TEXT NOT NULL,
    verb TEXT NOT NULL,
    uri TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER,
    latency_ms INTEGER,
    user_id TEXT,
    company_id TEXT,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_transaction ON events (transaction_id);
"""


def route_of(event: dict[str, Any]) -> str:
    """The verb and the route a report groups by: ``metadata.route`` (the path template the pipeline gives every
    event, ``transforms/stages/routes.py``), else the URL path of an event that came from elsewhere."""
    metadata = event.get("metadata") or {}
    request = event["request"]
    route = metadata.get("route")
    name = route if isinstance(route, str) and route else urlsplit(request["uri"]).path or "/"
    return f"{request['verb']} {name}"


class EventStore:
    """Thread-safe: the HTTP server's handler threads share one connection behind a lock."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(_SCHEMA)

    def add(self, events: list[dict[str, Any]]) -> None:
        now = time.time()
        rows = []
        for event in events:
            request, response = event["request"], event.get("response")
            latency = None
            if response is not None:
                latency = parse_iso_ms(response["time"]) - parse_iso_ms(request["time"])
            rows.append((
                now, event["transaction_id"], request["time"], request["verb"], request["uri"], route_of(event),
                response["status"] if response else None, latency, event.get("user_id"), event.get("company_id"),
                orjson.dumps(event).decode(),
            ))
        with self._lock:
            self._connection.execute("BEGIN")
            self._connection.executemany(
                "INSERT INTO events (received_at, transaction_id, request_time, verb, uri, route, status, "
                "latency_ms, user_id, company_id, event) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            self._connection.execute("COMMIT")

    def counts(self) -> dict[str, int]:
        with self._lock:
            total, distinct = self._connection.execute(
                "SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM events"
            ).fetchone()
        return {"events": total, "distinct_transaction_ids": distinct}

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._connection.execute("SELECT event FROM events ORDER BY id").fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def close(self) -> None:
        with self._lock:
            self._connection.close()
