"""A shorter Pub/Sub pull for Beam's local DirectRunner (issue 5's time bound), going around Beam.

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
affected; Dataflow uses its own native source. The evaluator still acks what it pulls before the pipeline
processes it (local runs stay at-most-once on a crash, see the README).
"""
from __future__ import annotations

from typing import Any

PULL_FIRST_MESSAGES = 10  # Beam's own count, until message sizes are known
PULL_MAX_MESSAGES = 100  # the most the emulator returns per pull
PULL_TARGET_BYTES = 1024 * 1024
PULL_TIMEOUT_SECS = 1.0


class _ShortPullClient:
    """A SubscriberClient whose ``pull`` uses our size and timeout; everything else passes through."""

    def __init__(self, client: Any):
        self._client = client
        self._max_messages = PULL_FIRST_MESSAGES

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
            return response

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
