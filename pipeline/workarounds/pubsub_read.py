"""Beam's local DirectRunner Pub/Sub read, made to pull in short steps and to acknowledge only what was
delivered (issue 5), going around Beam.

Beam 2.77's DirectRunner reads Pub/Sub in ``_PubSubReadEvaluator._read_from_pubsub`` with a hard-coded
``pull(max_messages=10, timeout=30)``, on the runner's only worker thread (``NUM_WORKERS = 1``). When traffic
stops, that pull blocks the thread for 30 s, so no processing-time timer fires meanwhile: the last partial
batch waited ~29 s instead of ``max_batch_delay_secs``. And 10 messages per pull caps throughput at a few
hundred messages/s.

There is no option for either, so ``use_short_pulls`` wraps the subscriber client the evaluator gets. Each pull
waits at most ``PULL_TIMEOUT_SECS`` (an empty wait is an empty answer, not an error) and asks for as many messages
as make about ``BUNDLE_TARGET_BYTES`` at the sizes seen so far, between 1 and ``PULL_MAX_MESSAGES`` (the most
the emulator returns at once). While answers come back full, the wrapper pulls again, so that one bundle holds
up to ``BUNDLE_MAX_MESSAGES`` messages or about ``BUNDLE_TARGET_BYTES``: the runner's cost per bundle (it
inspects and pickles every DoFn for each) is then shared by up to 1 000 small messages instead of 100. A background
thread pulls the next bundle while the runner processes the last one (``_Prefetcher``). Sizing by
bytes matters: bundles of ~20 000 events (100 messages of 200 Kong records) slowed the stalled-collector test
past 10 minutes. Only the local DirectRunner is affected; Dataflow uses its own native source.

The evaluator also sets the read's watermark to the wall clock after every pull (a Beam TODO). A message
published before that instant but not yet handed out (the emulator's delivery lag, or a backlog the pull did
not empty) then arrives behind the watermark, and an event-time window downstream may drop it (the archive,
issue 8). ``use_short_pulls`` therefore also replaces that watermark with ``watermark_after_pull``: the time
the pull started less ``DELIVERY_LAG_SECS``, and no later than the oldest message pulled while a backlog is
left. Dataflow's own source tracks the oldest unacknowledged message instead.

The evaluator also acknowledges what it pulls at once, before the pipeline processes it: a crash or a stop
would lose every message in flight. The wrapper therefore ignores that acknowledgement and holds each message
in the read's ``AckLedger`` (``transforms/io/acks.py``, found by the read's ``pubsub_source_name``), which renews
its lease and acknowledges it once the decode, delivery and dead-letter steps have reported every event decoded
from it delivered or written as a dead letter.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from apache_beam.utils.timestamp import Timestamp

from transforms.io.acks import AckLedger, held_records
from transforms.io.sources import pubsub_source_name

_log = logging.getLogger(__name__)

PULL_FIRST_MESSAGES = 10  # Beam's own count, until message sizes are known
PULL_MAX_MESSAGES = 100  # the most the emulator returns per pull
BUNDLE_TARGET_BYTES = 1024 * 1024
BUNDLE_MAX_MESSAGES = 1000
PULL_TIMEOUT_SECS = 1.0
EMPTY_PULL_SPACING_SECS = 0.05
PREFETCH_BUNDLES = 1
MAX_ACK_IDS_PER_CALL = 1000  # well under Pub/Sub's 512 KiB request limit
DEFAULT_ACK_DEADLINE_SECS = 10  # Pub/Sub's own default and minimum
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DELIVERY_LAG_SECS = 2.0  # a message published this long before a pull is handed out by it (emulator: ~ms)


def watermark_after_pull(started_secs: float, publish_times_secs: list[float], backlog_left: bool) -> Timestamp:
    """The read's watermark after a pull that started at ``started_secs``: every message published before it
    was handed out by this pull or an earlier one, unless the pull stopped with a backlog left, whose messages
    were published no earlier than the oldest one pulled (Pub/Sub hands out roughly oldest first)."""
    watermark = started_secs - DELIVERY_LAG_SECS
    if backlog_left and publish_times_secs:
        watermark = min(watermark, min(publish_times_secs))
    return Timestamp.of(watermark)


class _SubscriptionAcker:
    """Acknowledges held messages of one subscription, and extends their lease by its ack deadline.

    Acknowledgements go out from a background thread: the ledger asks for them on the runner's only worker thread
    (after each delivered batch), where waiting for the emulator's answers took ~10 % of that thread during a
    drain (py-spy). Ack ids that arrive while a call is out are sent together in the next. A run stopped before
    they are sent leaves those messages unacknowledged: Pub/Sub delivers them again after their deadline and the
    collector deduplicates them, as after a crash (at-least-once)."""

    def __init__(self, client: Any, subscription: str):
        self._client = client
        self._subscription = subscription
        self._deadline_secs: int | None = None
        self._pending: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._sender_lock = threading.Lock()

    def acknowledge(self, ack_ids: list[str]) -> None:
        self._pending.put(ack_ids)
        if self._sender is None:
            with self._sender_lock:
                if self._sender is None:
                    self._sender = threading.Thread(target=self._send_acknowledgements, name="pubsub-acker",
                                                    daemon=True)
                    self._sender.start()

    def _send_acknowledgements(self) -> None:
        while True:
            ack_ids = list(self._pending.get())
            while True:
                try:
                    ack_ids.extend(self._pending.get_nowait())
                except queue.Empty:
                    break
            for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_CALL):
                chunk = ack_ids[start:start + MAX_ACK_IDS_PER_CALL]
                try:
                    self._client.acknowledge(subscription=self._subscription, ack_ids=chunk)
                except Exception as exc:
                    # Nothing is lost: the messages come again after their lease and are deduplicated downstream.
                    _log.warning("could not acknowledge %d Pub/Sub messages (they will be read again): %s: %s",
                                 len(chunk), type(exc).__name__, str(exc)[:200])

    def extend(self, ack_ids: list[str]) -> None:
        deadline = self._ack_deadline_secs()
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_CALL):
            self._client.modify_ack_deadline(subscription=self._subscription, ack_deadline_seconds=deadline,
                                             ack_ids=ack_ids[start:start + MAX_ACK_IDS_PER_CALL])

    def renew_every_secs(self) -> float:
        # A third of the deadline: two renewals can fail before a held message is delivered again.
        return self._ack_deadline_secs() / 3

    def _ack_deadline_secs(self) -> int:
        # The subscription's own deadline, so that a crashed run's messages return when its owner expects.
        if self._deadline_secs is None:
            try:
                found = self._client.get_subscription(subscription=self._subscription).ack_deadline_seconds
            except Exception as exc:
                _log.warning("could not read the ack deadline of %s, using %d s: %s: %s", self._subscription,
                             DEFAULT_ACK_DEADLINE_SECS, type(exc).__name__, str(exc)[:200])
                found = 0
            self._deadline_secs = max(found, DEFAULT_ACK_DEADLINE_SECS)
        return self._deadline_secs


class _Message(NamedTuple):
    """What the evaluator reads of a received message (``PubsubMessage._from_message``), as plain values."""

    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: datetime
    ordering_key: str
    publish_micros: int  # the element timestamp, read without a datetime


class _Received(NamedTuple):
    ack_id: str
    message: _Message


class _PullAnswer(NamedTuple):
    received_messages: list[_Received]


def _received(item: Any) -> _Received:
    # From the raw protobuf: proto-plus wraps every field access (publish_time alone becomes a datetime through
    # three layers), which took a quarter of the runner's thread at ~1 000 messages/s.
    message = item.message
    published = message.publish_time
    micros = published.seconds * 1_000_000 + published.nanos // 1000
    return _Received(item.ack_id, _Message(message.data, dict(message.attributes), message.message_id,
                                           _EPOCH + timedelta(microseconds=micros), message.ordering_key, micros))


def _with_unlimited_answers(client: Any) -> Any:
    """``client``, or on the emulator a client like it whose channel takes answers of any size.

    The Pub/Sub client opens its production channel with no receive limit
    (``grpc.max_receive_message_length=-1``, ``SubscriberGrpcTransport.create_channel``), but the emulator's as a
    bare ``grpc.insecure_channel`` with gRPC's default 4 MiB. A pull answer past that failed whole with
    RESOURCE_EXHAUSTED after the emulator had leased every message in it: the good messages beside a large one
    came back only after their ack deadline, and failed again with it on every redelivery (issue 26). A message
    may be 10 MB, so an answer must be able to hold what the broker may send."""
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not emulator:
        return client
    import grpc
    from google.cloud import pubsub
    from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

    channel = grpc.insecure_channel(emulator, options=[("grpc.max_receive_message_length", -1),
                                                       ("grpc.max_send_message_length", -1)])
    return pubsub.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))


class _ShortPullClient:
    """A SubscriberClient whose ``pull`` hands out bundles that a background thread pulls ahead (our size and
    timeout, held in the ledger as they arrive), and whose ``acknowledge`` is left to the ledger; everything else
    passes through."""

    def __init__(self, client: Any, ledger: AckLedger):
        self._client = _with_unlimited_answers(client)
        self._ledger = ledger
        self._max_messages = PULL_FIRST_MESSAGES
        self._ackers: dict[str, _SubscriptionAcker] = {}
        self._watermarks: dict[str, Timestamp] = {}
        self._prefetchers: dict[str, _Prefetcher] = {}

    def pull(self, subscription: str, max_messages: int, timeout: float) -> Any:
        """The next bundle pulled ahead, or nothing after ``PULL_TIMEOUT_SECS`` without one."""
        prefetcher = self._prefetchers.get(subscription)
        if prefetcher is None:
            prefetcher = self._prefetchers[subscription] = _Prefetcher(self, subscription)
        received, watermark = prefetcher.next_bundle(PULL_TIMEOUT_SECS)
        if watermark is not None:
            self._watermarks[subscription] = watermark
        return _PullAnswer(received)

    def pull_bundle(self, subscription: str) -> tuple[list[_Received], Timestamp]:
        """One bundle: pulls again while each answer comes back full, up to about ``BUNDLE_TARGET_BYTES``; held in
        the ledger (which renews their lease) at once. With the watermark after it."""
        received: list[_Received] = []
        bundle_bytes = 0
        started = time.time()
        while True:
            asked = self._max_messages
            answer = self._pull_once(subscription)
            received.extend(answer)
            bundle_bytes += sum(len(item.message.data) for item in answer)
            self._resize(answer)
            backlog_left = len(answer) >= asked
            if not backlog_left or bundle_bytes >= BUNDLE_TARGET_BYTES or len(received) >= BUNDLE_MAX_MESSAGES:
                break
        self._hold(subscription, received)
        watermark = watermark_after_pull(started, [item.message.publish_micros / 1e6 for item in received],
                                         backlog_left)
        return received, watermark

    def watermark(self, subscription: str) -> Timestamp | None:
        """The watermark after the last pull of ``subscription`` (None before the first)."""
        return self._watermarks.get(subscription)

    def _pull_once(self, subscription: str) -> list[_Received]:
        from google.api_core import exceptions
        from google.cloud.pubsub_v1.types import PullResponse

        try:
            response = self._client.pull(subscription=subscription, max_messages=self._max_messages,
                                         timeout=PULL_TIMEOUT_SECS)
            return [_received(item) for item in PullResponse.pb(response).received_messages]
        except (exceptions.DeadlineExceeded, exceptions.RetryError):
            return []

    def acknowledge(self, subscription: str, ack_ids: list[str]) -> None:
        """The evaluator's acknowledgement on pull: ignored, the ledger acknowledges once accounted for."""

    def _hold(self, subscription: str, received: Any) -> None:
        acker = self._ackers.get(subscription)
        if acker is None:
            acker = self._ackers[subscription] = _SubscriptionAcker(self._client, subscription)
        ledger = self._ledger
        for item in received:
            ledger.hold(item.message.message_id, item.ack_id, acker)

    def _resize(self, received: Any) -> None:
        if received:
            mean_bytes = max(1, sum(len(item.message.data) for item in received) // len(received))
            self._max_messages = max(1, min(PULL_MAX_MESSAGES, BUNDLE_TARGET_BYTES // mean_bytes))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _Prefetcher:
    """Pulls the next bundle of one subscription in a background thread while the runner's only worker thread
    processes the last one: waiting for each pull in that thread took 15–25 % of a Pub/Sub drain's time. At most
    ``PREFETCH_BUNDLES`` bundle is pulled ahead, so a stalled pipeline still leaves its backlog in Pub/Sub; a
    bundle pulled ahead is already held in the ledger, whose lease renewals keep it from being delivered again
    meanwhile."""

    def __init__(self, client: _ShortPullClient, subscription: str):
        self._client = client
        self._subscription = subscription
        self._bundles: queue.SimpleQueue = queue.SimpleQueue()
        self._slots = threading.Semaphore(PREFETCH_BUNDLES)  # taken by a pull, given back when its bundle is
        self._enqueued = 0  # bundles put in the queue so far (by the background thread)
        self._taken = 0  # bundles taken out of it (by the runner's thread)
        # (watermark after the latest empty pull, bundles enqueued before it): one tuple, replaced whole.
        self._idle: tuple[Timestamp, int] | None = None
        threading.Thread(target=self._run, name=f"gatewaystream-pull-{subscription.rsplit('/', 1)[-1]}",
                         daemon=True).start()

    def next_bundle(self, wait_secs: float) -> tuple[list[_Received], Timestamp | None]:
        """A bundle and its watermark; else, after ``wait_secs``, no messages and the watermark of the latest
        empty pull, if every bundle pulled before that pull was handed out (else None: the watermark stays)."""
        try:
            item = self._bundles.get(timeout=wait_secs)
        except queue.Empty:
            idle = self._idle
            return [], (idle[0] if idle is not None and idle[1] == self._taken else None)
        if isinstance(item, BaseException):
            raise item
        self._taken += 1
        self._slots.release()
        return item

    def _run(self) -> None:
        while True:
            self._slots.acquire()
            started = time.time()
            try:
                received, watermark = self._client.pull_bundle(self._subscription)
            except Exception as exc:  # re-raised in the runner's thread, which fails the pipeline as a pull did
                self._bundles.put(exc)
                return
            if received:
                self._enqueued += 1
                self._bundles.put((received, watermark))
            else:
                self._slots.release()
                self._idle = (watermark, self._enqueued)
                # The emulator answers an empty pull at once: pull again soon (latency), but without spinning.
                time.sleep(max(0.0, started + EMPTY_PULL_SPACING_SECS - time.time()))


def use_short_pulls() -> None:
    """Makes the DirectRunner's Pub/Sub reads pull in short, larger steps (idempotent)."""
    from apache_beam.io.gcp.pubsub import PubsubMessage
    from apache_beam.runners.direct.transform_evaluator import _PubSubReadEvaluator

    original = _PubSubReadEvaluator.__dict__["_get_subscriber_client"].__func__
    if getattr(original, "short_pulls", False):
        return

    def short_pull_client(cls, transform):
        client = original(cls, transform)
        # Beam caches the client per transform; ours rides on it, so the pull size learnt is kept.
        if not hasattr(client, "gatewaystream_short_pulls"):
            source = transform.transform._source  # Beam's _PubSubSource, as _DirectReadFromPubSub keeps it
            ledger = held_records(pubsub_source_name(source.full_subscription or source.full_topic))
            client.gatewaystream_short_pulls = _ShortPullClient(client, ledger)
        return client.gatewaystream_short_pulls

    def finish_bundle_with_pull_watermark(self):
        result = original_finish_bundle(self)
        watermark = self._get_subscriber_client(self._applied_ptransform).watermark(self._sub_name)
        if watermark is not None:
            result.keyed_watermark_holds[None] = watermark
        return result

    def read_with_integer_timestamps(self, timestamp_attribute):
        # Beam's _read_from_pubsub, minus its acknowledgement (the ledger's) and its timestamp from a datetime:
        # Timestamp.from_utc_datetime cost ~5 % of a drain's GIL time (py-spy).
        if timestamp_attribute:
            return original_read(self, timestamp_attribute)
        answer = self._get_subscriber_client(self._applied_ptransform).pull(
            subscription=self._sub_name, max_messages=PULL_FIRST_MESSAGES, timeout=PULL_TIMEOUT_SECS)
        return [(Timestamp(micros=message.publish_micros),
                 PubsubMessage(message.data, message.attributes, message.message_id or None, message.publish_time,
                               message.ordering_key))
                for message in (item.message for item in answer.received_messages)]

    original_finish_bundle = _PubSubReadEvaluator.finish_bundle
    original_read = _PubSubReadEvaluator._read_from_pubsub
    short_pull_client.short_pulls = True
    _PubSubReadEvaluator._get_subscriber_client = classmethod(short_pull_client)
    _PubSubReadEvaluator.finish_bundle = finish_bundle_with_pull_watermark
    _PubSubReadEvaluator._read_from_pubsub = read_with_integer_timestamps
