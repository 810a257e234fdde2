"""Beam's local DirectRunner Pub/Sub read, made to pull in short steps and to acknowledge only what was
delivered (issue 5), going around Beam.

Beam 2.77's DirectRunner reads Pub/Sub in ``_PubSubReadEvaluator._read_from_pubsub`` with a hard-coded
``pull(max_messages=10, timeout=30)``, on the runner's only worker thread (``NUM_WORKERS = 1``). When traffic
stops, that pull blocks the thread for 30 s, so no processing-time timer fires meanwhile: the last partial
batch waited ~29 s instead of ``max_batch_delay_secs``. And 10 messages per pull caps throughput at a few
hundred messages/s.

There is no option for either, so ``use_short_pulls`` wraps the subscriber client the evaluator gets: each
pull waits at most ``PULL_TIMEOUT_SECS`` (an empty wait is an empty answer, not an error) and asks for as many
messages as make about ``PULL_TARGET_BYTES`` at the sizes seen so far, between 1 and ``PULL_MAX_MESSAGES``.
Sizing by bytes matters: one pull is one bundle, and bundles of ~20 000 events (100 messages of 200 Kong
records) slowed the stalled-collector test past 10 minutes, while single-event messages need ~100 per pull
(64 events/s at 10 per pull, 445 at 100, ``benchmarks/bench_streaming.py``). Only the local DirectRunner is
affected; Dataflow uses its own native source.

The evaluator also acknowledges what it pulls at once, before the pipeline processes it: a crash or a stop
would lose every message in flight. The wrapper therefore ignores that acknowledgement and holds each message
in the process's ``AckLedger`` (``transforms/acks.py``), which renews its lease and acknowledges it once every
event decoded from it was delivered or written as a dead letter.
"""
from __future__ import annotations

import logging
from typing import Any

from transforms.acks import process_ledger

_log = logging.getLogger(__name__)

PULL_FIRST_MESSAGES = 10  # Beam's own count, until message sizes are known
PULL_MAX_MESSAGES = 100  # the most the emulator returns per pull
PULL_TARGET_BYTES = 1024 * 1024
PULL_TIMEOUT_SECS = 1.0
MAX_ACK_IDS_PER_CALL = 1000  # well under Pub/Sub's 512 KiB request limit
DEFAULT_ACK_DEADLINE_SECS = 10  # Pub/Sub's own default and minimum


class _SubscriptionAcker:
    """Acknowledges held messages of one subscription, and extends their lease by its ack deadline."""

    def __init__(self, client: Any, subscription: str):
        self._client = client
        self._subscription = subscription
        self._deadline_secs: int | None = None

    def acknowledge(self, ack_ids: list[str]) -> None:
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_CALL):
            self._client.acknowledge(subscription=self._subscription,
                                     ack_ids=ack_ids[start:start + MAX_ACK_IDS_PER_CALL])

    def extend(self, ack_ids: list[str]) -> None:
        deadline = self._ack_deadline_secs()
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_CALL):
            self._client.modify_ack_deadline(subscription=self._subscription, ack_deadline_seconds=deadline,
                                             ack_ids=ack_ids[start:start + MAX_ACK_IDS_PER_CALL])

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


class _ShortPullClient:
    """A SubscriberClient whose ``pull`` uses our size and timeout and holds what it pulls, and whose
    ``acknowledge`` is left to the ledger; everything else passes through."""

    def __init__(self, client: Any):
        self._client = client
        self._max_messages = PULL_FIRST_MESSAGES
        self._ackers: dict[str, _SubscriptionAcker] = {}

    def pull(self, subscription: str, max_messages: int, timeout: float) -> Any:
        from google.api_core import exceptions
        from google.cloud.pubsub_v1.types import PullResponse

        while True:
            try:
                response = self._client.pull(subscription=subscription, max_messages=self._max_messages,
                                             timeout=PULL_TIMEOUT_SECS)
            except (exceptions.DeadlineExceeded, exceptions.RetryError):
                return PullResponse()
            except exceptions.ResourceExhausted:
                # The answer passed gRPC's 4 MiB receive limit (large messages, e.g. http-log batches):
                # ask for fewer from now on. At one message the error is real and is raised.
                if self._max_messages == 1:
                    raise
                self._max_messages = max(1, self._max_messages // 2)
                continue
            self._resize(response.received_messages)
            self._hold(subscription, response.received_messages)
            return response

    def acknowledge(self, subscription: str, ack_ids: list[str]) -> None:
        """The evaluator's acknowledgement on pull: ignored, the ledger acknowledges once accounted for."""

    def _hold(self, subscription: str, received: Any) -> None:
        acker = self._ackers.get(subscription)
        if acker is None:
            acker = self._ackers[subscription] = _SubscriptionAcker(self._client, subscription)
        ledger = process_ledger()
        for item in received:
            ledger.hold(item.message.message_id, item.ack_id, acker)

    def _resize(self, received: Any) -> None:
        if received:
            mean_bytes = max(1, sum(len(item.message.data) for item in received) // len(received))
            self._max_messages = max(1, min(PULL_MAX_MESSAGES, PULL_TARGET_BYTES // mean_bytes))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def use_short_pulls() -> None:
    """Makes the DirectRunner's Pub/Sub reads pull in short, larger steps (idempotent)."""
    from apache_beam.runners.direct.transform_evaluator import _PubSubReadEvaluator

    original = _PubSubReadEvaluator.__dict__["_get_subscriber_client"].__func__
    if getattr(original, "short_pulls", False):
        return

    def short_pull_client(cls, transform):
        client = original(cls, transform)
        # Beam caches the client per transform; ours rides on it, so the pull size learnt is kept.
        if not hasattr(client, "gatewaystream_short_pulls"):
            client.gatewaystream_short_pulls = _ShortPullClient(client)
        return client.gatewaystream_short_pulls

    short_pull_client.short_pulls = True
    _PubSubReadEvaluator._get_subscriber_client = classmethod(short_pull_client)
