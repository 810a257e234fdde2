"""Delivery (SPEC §7): each batch goes to a sink; a batch that fails becomes one dead letter per event.

A sink is a class with ``open``/``send``/``close`` (``BatchSink``); ``DeliverBatches`` runs any sink, so a new
target is a new class, not a branch. ``WriteToAnalyticsApi`` POSTs gzip JSON to a Moesif-compatible
collector; ``WriteBatchFiles`` writes each batch as a JSON array file (dry runs, ``--output``).

Retries (SPEC §7) happen inside ``AnalyticsApiSink.send``: connection errors, timeouts, 408, 429 and 5xx are
retried with exponential backoff and full jitter (``RetryPolicy``), waiting at least what ``Retry-After``
asks, until ``max_retry_secs`` would be passed; other answers are final. Up to ``batches_in_flight`` batches
are sent at once; while they are all being retried the bundle does not go on, so the runner holds the events
behind them in its own state (backpressure) rather than in a queue of ours. A 413 makes ``DeliverBatches``
split the batch in halves and send each.
"""
from __future__ import annotations

import email.utils
import functools
import gzip
import hashlib
import logging
import random
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
import orjson
import urllib3
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from transforms.io.acks import Acknowledgements
from transforms.io.dead_letters import DEAD_LETTER_TAG, dead_letter
from transforms.io.filesystems import ensure_directory
from transforms.model.records import SerializedEvent

_log = logging.getLogger(__name__)

BATCH_PATH = "/v1/events/batch"
RESPONSE_EXCERPT_BYTES = 500
RESPONSE_EXCERPT_WINDOW_BYTES = 64 * 1024


class DeliveryResult(NamedTuple):
    ok: bool
    reason: str = ""  # dead-letter reason code when not ok, e.g. http_400, connection_error
    detail: str = ""
    http_status: int | None = None
    attempts: int = 1


RETRYABLE_STATUSES = frozenset({408, 429, *range(500, 600)})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, initial * 2**(n-1))) s."""

    max_retry_secs: float = 300.0
    initial_backoff_secs: float = 0.5
    max_backoff_secs: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_backoff_secs, self.initial_backoff_secs * 2 ** (attempt - 1)))


def retry_after_secs(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class BatchSink(ABC):
    """A delivery target. Instances are pickled to workers: connections are made in ``open``."""

    @abstractmethod
    def describe(self) -> str:
        """Where batches go, safe to log (no secrets)."""

    def open(self) -> None:  # noqa: B027 - optional hook
        """Called once per worker DoFn instance before the first batch."""

    @abstractmethod
    def send(self, body: bytes, count: int) -> DeliveryResult:
        """Delivers one JSON array of ``count`` events."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Called when the worker tears the DoFn down."""


def redact_secret(secret: str) -> str:
    """At most the last 4 characters of a secret, for logs (SPEC §7)."""
    return f"…{secret[-4:]}" if len(secret) > 8 else "…"


def _written_forms(secret: str) -> set[str]:
    return {secret, orjson.dumps(secret).decode()[1:-1], urllib.parse.quote(secret, safe="")}


def scrub_secrets(text: str, secrets: Sequence[str], limit: int | None = None) -> str:
    """``text`` with every one of ``secrets`` redacted wherever it stands, written plainly, JSON-escaped or
    percent-encoded: what a collector's answer may echo of our request (SPEC §7). With ``limit``, cut to that
    many characters after scrubbing, without the head of a secret that the text (or the cut) broke off."""
    for secret in secrets:
        for written in _written_forms(secret):
            text = text.replace(written, redact_secret(secret))
    if limit is None:
        return text
    text = text[:limit]
    for written in (form for secret in secrets for form in _written_forms(secret)):
        for length in range(min(len(written) - 1, len(text)), 0, -1):
            if text.endswith(written[:length]):
                return text[:-length]
    return text


class AnalyticsApiSink(BatchSink):
    """gzip JSON ``POST {api_endpoint}/v1/events/batch`` with ``X-Moesif-Application-Id``; 2xx is success."""

    def __init__(self, api_endpoint: str, application_id: str, connect_timeout_ms: int, send_timeout_ms: int,
                 retry: RetryPolicy = RetryPolicy(), other_secrets: Sequence[str] = ()):
        self._url = api_endpoint.rstrip("/") + BATCH_PATH
        self._application_id = application_id
        # Redacted from every answer's excerpt and error text, before either is cut or logged.
        self._secrets = tuple(secret for secret in (application_id, *other_secrets) if secret)
        self._timeouts_secs = (connect_timeout_ms / 1000, send_timeout_ms / 1000)
        self._retry = retry
        self._pool: urllib3.PoolManager | None = None
        self._random = random.Random()

    def describe(self) -> str:
        return f"{self._url} (application id {redact_secret(self._application_id)})"

    def open(self) -> None:
        self._pool = _keep_alive_pool(*self._timeouts_secs)

    def send(self, body: bytes, count: int) -> DeliveryResult:
        assert self._pool is not None, "open() was not called"
        compressed = gzip.compress(body, 5)
        started = time.monotonic()
        deadline = started + self._retry.max_retry_secs
        attempt = 0
        while True:
            attempt += 1
            result, retry_after = self._post(compressed)
            if result.ok or not _retryable(result):
                return result._replace(attempts=attempt)
            wait = self._retry.backoff(attempt, self._random)
            if retry_after is not None:
                wait = max(wait, retry_after)
            if time.monotonic() + wait > deadline:
                detail = (f"gave up after {attempt} attempts in {time.monotonic() - started:.1f} s "
                          f"(max_retry_secs {self._retry.max_retry_secs:g}); last: {result.detail}")
                return result._replace(attempts=attempt, detail=detail[:RESPONSE_EXCERPT_BYTES])
            _log.info("batch of %d events: %s, retry %d in %.2f s", count, result.reason, attempt, wait)
            time.sleep(wait)

    def _post(self, compressed: bytes) -> tuple[DeliveryResult, float | None]:
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "X-Moesif-Application-Id": self._application_id,
            "User-Agent": "gatewaystream/0.1",
        }
        try:
            response = self._pool.request("POST", self._url, body=compressed, headers=headers)
        except urllib3.exceptions.NewConnectionError as exc:  # a subclass of ConnectTimeoutError in urllib3 2.x
            return DeliveryResult(False, "connection_error", self._error_text(exc)), None
        except urllib3.exceptions.TimeoutError as exc:
            return DeliveryResult(False, "timeout", self._error_text(exc)), None
        except urllib3.exceptions.HTTPError as exc:
            return DeliveryResult(False, "connection_error", self._error_text(exc)), None
        if 200 <= response.status < 300:
            return DeliveryResult(True, http_status=response.status), None
        # Scrubbed before it is cut (a secret cut in two at the end would keep its head), from a window large
        # enough that the text scrubbing moves into the excerpt was scrubbed too.
        window = response.data[:RESPONSE_EXCERPT_WINDOW_BYTES].decode("utf-8", "replace")
        excerpt = scrub_secrets(window, self._secrets, RESPONSE_EXCERPT_BYTES)
        return (DeliveryResult(False, f"http_{response.status}", excerpt, http_status=response.status),
                retry_after_secs(response.headers.get("Retry-After")))

    def _error_text(self, exc: Exception) -> str:
        return scrub_secrets(f"{type(exc).__name__}: {exc}", self._secrets, RESPONSE_EXCERPT_BYTES)

    def close(self) -> None:
        self._pool = None  # the pool is the process's (_keep_alive_pool): its connections stay open for the next


@functools.cache
def _keep_alive_pool(connect_timeout_secs: float, read_timeout_secs: float) -> urllib3.PoolManager:
    """The process's keep-alive connections for one timeout setting, shared by every sink (urllib3's pools are
    thread-safe). Per sink they lasted one bundle on Beam's local DirectRunner, which sets a DoFn up and tears it
    down for every bundle: each bundle opened new connections (a TLS handshake each to a remote collector).
    urllib3 does no retries of its own (retries=False), so that every attempt is counted and classified here.
    maxsize: a connection for each of up to 16 batches in flight (--batches_in_flight) is kept alive; more are
    opened when needed and closed after use."""
    return urllib3.PoolManager(num_pools=4, maxsize=16, retries=False,
                               timeout=urllib3.Timeout(connect=connect_timeout_secs, read=read_timeout_secs))


def _retryable(result: DeliveryResult) -> bool:
    if result.http_status is None:
        return result.reason in ("connection_error", "timeout")
    return result.http_status in RETRYABLE_STATUSES


class DirectorySink(BatchSink):
    """Each batch as a JSON array file ``batch-<sha256>.json``: a retried batch rewrites the same file."""

    def __init__(self, directory: str):
        self._directory = directory

    def describe(self) -> str:
        return self._directory

    def open(self) -> None:
        ensure_directory(self._directory)

    def send(self, body: bytes, count: int) -> DeliveryResult:
        name = f"batch-{hashlib.sha256(body).hexdigest()[:32]}.json"
        temporary = FileSystems.join(self._directory, f".tmp-{name}")
        try:
            with FileSystems.create(temporary) as handle:
                handle.write(body)
            FileSystems.rename([temporary], [FileSystems.join(self._directory, name)])
        except Exception as exc:
            return DeliveryResult(False, "write_error", f"{type(exc).__name__}: {exc}"[:500])
        return DeliveryResult(True)


class _Sent(NamedTuple):
    """One send of (part of) a batch, as a sender thread saw it."""

    items: list[SerializedEvent]
    body_bytes: int
    result: DeliveryResult
    latency_ms: int


class _InFlight(NamedTuple):
    sends: Future  # of list[_Sent]: the batch, or its halves after a 413
    window: Any
    timestamp: Any


class _DeliverFn(beam.DoFn):
    """Sends up to ``batches_in_flight`` batches at once from sender threads, so that the runner's thread
    goes on with the next elements while the collector answers. Results (metrics, acknowledgements, dead
    letters) are taken in the runner's thread, oldest batch first: Beam's metrics and outputs belong to it.
    With every sender busy, ``process`` waits for the oldest batch, so a slow or failing collector still
    holds the runner (backpressure) and nothing queues up in memory beyond those batches."""

    def __init__(self, sink: BatchSink, batches_in_flight: int = 1, acknowledgements: Acknowledgements | None = None):
        self._sink = sink
        self._batches_in_flight = max(1, batches_in_flight)
        self._acknowledgements = acknowledgements
        self._batches = Metrics.counter("gatewaystream", "batches_sent")
        self._events = Metrics.counter("gatewaystream", "events_sent")
        self._bytes = Metrics.counter("gatewaystream", "bytes_sent")
        self._failed_batches = Metrics.counter("gatewaystream", "batches_failed")
        self._retries = Metrics.counter("gatewaystream", "delivery_retries")
        self._splits = Metrics.counter("gatewaystream", "batches_split_on_413")
        self._batch_size = Metrics.distribution("gatewaystream", "batch_size")
        self._latency = Metrics.distribution("gatewaystream", "batch_latency_ms")

    def setup(self):
        self._sink.open()
        self._senders = ThreadPoolExecutor(self._batches_in_flight, thread_name_prefix="gatewaystream-send")
        # DEBUG: the DirectRunner sets a DoFn up for every bundle, which made this a line per bundle locally.
        _log.debug("delivering batches to %s", self._sink.describe())

    def start_bundle(self):
        # Empty after every finished bundle; a failed bundle's sends are not this bundle's (the runner retries it).
        self._in_flight: deque[_InFlight] = deque()

    def process(self, keyed_batch, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        _, items = keyed_batch
        self._in_flight.append(_InFlight(self._senders.submit(self._send, list(items)), window, timestamp))
        while self._in_flight and (len(self._in_flight) >= self._batches_in_flight or self._in_flight[0].sends.done()):
            yield from self._outputs_of(self._in_flight.popleft())

    def finish_bundle(self):
        while self._in_flight:
            yield from self._outputs_of(self._in_flight.popleft())

    def _send(self, items: list[SerializedEvent]) -> list[_Sent]:
        """In a sender thread: the batch, and on 413 each half in turn (too large for the collector)."""
        body = b"[" + b",".join(item.json for item in items) + b"]"
        started = time.monotonic()
        result = self._sink.send(body, len(items))
        sent = _Sent(items, len(body), result, int((time.monotonic() - started) * 1000))
        if result.http_status == 413 and len(items) > 1:
            half = len(items) // 2
            return [sent, *self._send(items[:half]), *self._send(items[half:])]
        return [sent]

    def _outputs_of(self, flight: _InFlight):
        for items, body_bytes, result, latency_ms in flight.sends.result():
            self._latency.update(latency_ms)
            if result.attempts > 1:
                self._retries.inc(result.attempts - 1)
            if result.ok:
                self._batches.inc()
                self._events.inc(len(items))
                self._bytes.inc(body_bytes)
                self._batch_size.update(len(items))
                if self._acknowledgements is not None:
                    self._acknowledgements.finish(item.source for item in items)
            elif result.http_status == 413 and len(items) > 1:
                self._splits.inc()  # its halves follow in this list
            else:
                self._failed_batches.inc()
                _log.warning("batch of %d events failed: %s %s", len(items), result.reason, result.detail[:200])
                for item in items:
                    letter = dead_letter("deliver", result.reason, result.detail, item.source, item.json,
                                         attempts=result.attempts, http_status=result.http_status)
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG,
                                                   WindowedValue(letter, flight.timestamp, (flight.window,)))

    def teardown(self):
        self._senders.shutdown(wait=True)
        self._sink.close()


class DeliverBatches(beam.PTransform):
    """``(key, [SerializedEvent])`` batches → the sink, up to ``batches_in_flight`` at once; returns the dead
    letters of failed batches. With ``acknowledgements`` (the local runner's held source,
    ``transforms/io/acks.py``), each delivered batch's events are reported finished as it is delivered."""

    def __init__(self, sink: BatchSink, batches_in_flight: int = 1, acknowledgements: Acknowledgements | None = None):
        super().__init__()
        self._sink = sink
        self._batches_in_flight = batches_in_flight
        self._acknowledgements = acknowledgements

    def expand(self, batches):
        deliver = _DeliverFn(self._sink, self._batches_in_flight, self._acknowledgements)
        return batches | beam.ParDo(deliver).with_outputs(DEAD_LETTER_TAG, main="delivered")


class WriteToAnalyticsApi(DeliverBatches):
    """Delivers to a Moesif-compatible collection API (SPEC §7)."""

    def __init__(self, api_endpoint: str, application_id: str, connect_timeout_ms: int = 1000,
                 send_timeout_ms: int = 2000, retry: RetryPolicy = RetryPolicy(), batches_in_flight: int = 1,
                 other_secrets: Sequence[str] = (), acknowledgements: Acknowledgements | None = None):
        super().__init__(AnalyticsApiSink(api_endpoint, application_id, connect_timeout_ms, send_timeout_ms, retry,
                                          other_secrets), batches_in_flight, acknowledgements)


class WriteBatchFiles(DeliverBatches):
    """Writes each batch as one JSON array file into ``directory`` (any Beam filesystem)."""

    def __init__(self, directory: str, batches_in_flight: int = 1, acknowledgements: Acknowledgements | None = None):
        super().__init__(DirectorySink(directory), batches_in_flight, acknowledgements)
