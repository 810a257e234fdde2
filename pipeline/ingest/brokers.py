"""Where the ingest writes what it accepts: the Pub/Sub topic or the Kinesis stream the pipeline reads. ``publish``
returns only after the broker acknowledged every message, so a 2xx answer means the body is stored."""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

PUBSUB_MESSAGE_LIMIT = 10_000_000 - 64 * 1024  # Pub/Sub's 10 MB per message, less room for attributes
KINESIS_RECORD_LIMIT = 1024 * 1024 - 256  # Kinesis: 1 MiB of data plus partition key per record
KINESIS_BATCH_RECORDS = 500
KINESIS_BATCH_BYTES = 5 * 1024 * 1024


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time or refused: the client is told to retry (503)."""


class Broker(Protocol):
    message_limit: int
    name: str

    async def publish(self, messages: list[bytes], attributes: dict[str, str]) -> None: ...

    def close(self) -> None: ...


class PubSubBroker:
    """A Pub/Sub topic, through google-cloud-pubsub's publisher (``PUBSUB_EMULATOR_HOST`` reaches the emulator)."""

    message_limit = PUBSUB_MESSAGE_LIMIT

    def __init__(self, topic: str, timeout_secs: float, pending_byte_limit: int):
        from google.cloud import pubsub_v1
        from google.cloud.pubsub_v1.types import LimitExceededBehavior, PublisherOptions, PublishFlowControl

        self.name = topic
        self._topic = topic
        self._timeout = timeout_secs
        # The client library keeps a message until the broker acknowledges it, also after the ingest has answered
        # 503 on a timeout: its own flow control, failing fast, bounds what a stalled broker makes it hold.
        flow_control = PublishFlowControl(message_limit=100_000, byte_limit=pending_byte_limit,
                                          limit_exceeded_behavior=LimitExceededBehavior.ERROR)
        self._publisher = pubsub_v1.PublisherClient(publisher_options=PublisherOptions(flow_control=flow_control))

    async def publish(self, messages: list[bytes], attributes: dict[str, str]) -> None:
        try:
            futures = [asyncio.wrap_future(self._publisher.publish(self._topic, data, **attributes))
                       for data in messages]
        except Exception as exc:  # noqa: BLE001 - the library's flow control is full: the broker is behind
            raise BrokerUnavailable(f"Pub/Sub has not acknowledged earlier messages: {type(exc).__name__}") from None
        try:
            await asyncio.wait_for(asyncio.gather(*futures), self._timeout)
        except asyncio.TimeoutError:
            raise BrokerUnavailable(f"Pub/Sub did not acknowledge within {self._timeout:g} s") from None
        except Exception as exc:  # noqa: BLE001 - any publish failure is the broker's: the client retries
            raise BrokerUnavailable(f"Pub/Sub refused the message: {type(exc).__name__}: {str(exc)[:160]}") from None

    def close(self) -> None:
        self._publisher.stop()


class KinesisBroker:
    """A Kinesis data stream, through boto3's ``PutRecords`` (its standard credential chain); records that the
    stream throttles are retried with backoff until the timeout."""

    message_limit = KINESIS_RECORD_LIMIT

    def __init__(self, stream: str, timeout_secs: float, region: str | None = None, endpoint_url: str | None = None):
        import boto3

        self.name = stream
        self._stream_argument = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
        if region is None and stream.startswith("arn:"):
            region = stream.split(":")[3]
        self._client = boto3.client("kinesis", region_name=region, endpoint_url=endpoint_url)
        self._timeout = timeout_secs
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kinesis-put")

    async def publish(self, messages: list[bytes], attributes: dict[str, str]) -> None:
        # Kinesis records carry no attributes: the pipeline detects the format from each record's shape.
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(self._executor, self._put_all, messages), self._timeout)
        except asyncio.TimeoutError:
            raise BrokerUnavailable(f"Kinesis did not acknowledge within {self._timeout:g} s") from None

    def _put_all(self, messages: list[bytes]) -> None:
        pending = [{"Data": data, "PartitionKey": uuid.uuid4().hex} for data in messages]
        delay = 0.05
        # The thread is not cancelled when the request's wait times out: it must stop retrying by itself.
        deadline = time.monotonic() + self._timeout
        while pending:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"Kinesis still throttled {len(pending)} records after {self._timeout:g} s")
            batch, size = [], 0
            while pending and len(batch) < KINESIS_BATCH_RECORDS and size + len(pending[0]["Data"]) <= \
                    KINESIS_BATCH_BYTES:
                size += len(pending[0]["Data"])
                batch.append(pending.pop(0))
            try:
                answer = self._client.put_records(Records=batch, **self._stream_argument)
            except Exception as exc:  # noqa: BLE001 - unreachable, no such stream, no permission: all a 503
                raise BrokerUnavailable(f"Kinesis refused the records: {type(exc).__name__}: {str(exc)[:160]}") \
                    from None
            failed = [record for record, result in zip(batch, answer["Records"], strict=True)
                      if "ErrorCode" in result]
            if failed:
                pending = failed + pending
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

