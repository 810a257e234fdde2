"""The pipeline graph, as SPEC §1 says it: read → decode → identify → mask → batch → deliver, with every stage's
failures flattened into one dead-letter output. On the local runner only, the source's records are held until
everything they became has left the pipeline: decode, delivery and the dead-letter writer report to the source's
``Acknowledgements`` (``transforms/io/acks.py`` says why they report directly rather than as outputs)."""
from __future__ import annotations

import apache_beam as beam

from pipeline.config import ApiDelivery, FileDelivery, FileSource, PipelineConfig, PubSubSource
from transforms.io.acks import Acknowledgements
from transforms.io.archive import ArchiveEvents
from transforms.io.dead_letters import DEAD_LETTER_TAG, WriteDeadLetters
from transforms.io.kinesis import KinesisSettings, ReadKinesisRecords
from transforms.io.sink import DeliverBatches, WriteBatchFiles, WriteToAnalyticsApi
from transforms.io.sources import ReadFileRecords, ReadPubSubRecords
from transforms.stages.batching import BatchEvents
from transforms.stages.dead_letter_payload import PayloadMasker, apply_payload_policy
from transforms.stages.decode import DecodeRecords
from transforms.stages.identity import IdentifyUsers
from transforms.stages.masking import MaskEvents


def read_records(source: FileSource | PubSubSource | KinesisSettings) -> beam.PTransform:
    if isinstance(source, FileSource):
        return ReadFileRecords(source.pattern, source.max_record_bytes)
    if isinstance(source, KinesisSettings):
        return ReadKinesisRecords(source)
    return ReadPubSubRecords(subscription=source.subscription, topic=source.topic,
                             implementation=source.implementation, expansion_service=source.expansion_service)


def deliver(delivery: ApiDelivery | FileDelivery, acknowledgements: Acknowledgements | None = None) -> DeliverBatches:
    if isinstance(delivery, ApiDelivery):
        return WriteToAnalyticsApi(delivery.endpoint, delivery.application_id, delivery.connect_timeout_ms,
                                   delivery.send_timeout_ms, delivery.retry, delivery.batches_in_flight,
                                   other_secrets=delivery.other_secrets, acknowledgements=acknowledgements)
    return WriteBatchFiles(delivery.directory, delivery.batches_in_flight, acknowledgements)


def build(pipeline: beam.Pipeline, config: PipelineConfig) -> None:
    """Adds gatewaystream's transforms to ``pipeline``."""
    acknowledgements = Acknowledgements(config.held_source) if config.held_source else None
    records = pipeline | "Read" >> read_records(config.source)
    decoded = records | "Decode" >> DecodeRecords(config.decode, config.routes, acknowledgements)
    identified = decoded.events | "Identify" >> IdentifyUsers(config.identity)
    masked = identified.events | "Mask" >> MaskEvents(config.mask)
    batching = config.batching
    batched = masked.events | "Batch" >> BatchEvents(
        batching.destination, batching.batch_size, batching.max_delay_secs, batching.shards,
        batch_max_bytes=batching.max_bytes, bounded=config.bounded,
    )
    delivered = batched["batches"] | "Deliver" >> deliver(config.delivery, acknowledgements)
    archive = config.archive
    archived = (
        [masked.events | "Archive" >> ArchiveEvents(archive.location, archive.window_secs,
                                                     archive.allowed_lateness_secs, archive.shards)]
        if archive else []
    )

    (
        (
            decoded[DEAD_LETTER_TAG],
            identified[DEAD_LETTER_TAG],
            masked[DEAD_LETTER_TAG],
            batched[DEAD_LETTER_TAG],
            delivered[DEAD_LETTER_TAG],
            *(archive[DEAD_LETTER_TAG] for archive in archived),
        )
        | "AllDeadLetters" >> beam.Flatten()
        | "DeadLetterPayloads" >> beam.Map(apply_payload_policy, config.dead_letters.payload_policy,
                                           PayloadMasker(config.mask))
        | "WriteDeadLetters" >> WriteDeadLetters(config.dead_letters.target, bounded=config.bounded,
                                                 acknowledgements=acknowledgements)
    )
