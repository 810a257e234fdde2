"""Sending the bundled samples the way their gateways would (developer tool, for ``run_local.sh``): over HTTP to
the ingest where the real gateway posts over HTTP, straight onto the broker where its real transport does.

- Kong records and http-log batches: ``POST /kong/http-log``, as the http-log plugin posts them;
- Moesif events: ``POST /v1/events/batch``, gzip, as Moesif's SDKs and WSO2's Moesif publisher post them;
- AWS API Gateway access lines and CloudWatch Logs envelopes: ``POST /firehose``, 50 records a delivery, as a
  Firehose stream with an HTTP endpoint destination delivers them;
- everything else goes straight to the broker: WSO2 ``apim_metrics.log`` lines and ALF documents (a log shipper
  publishes them), Google Cloud Logging entries (a log sink publishes them), and the deliberately broken
  records (which the ingest would refuse before the pipeline could dead-letter them).
"""
from __future__ import annotations

import base64
import gzip
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import requests

from devtools.local_services import INGEST_CREDENTIALS

FIREHOSE_RECORDS_PER_DELIVERY = 50


def sample_files(samples: Path) -> dict[str, list[bytes]]:
    """File name → its records (one a line), in name order."""
    return {path.name: [line for line in path.read_bytes().splitlines() if line.strip()]
            for path in sorted(samples.glob("*.jsonl"))}


def send_like_gateways(files: dict[str, list[bytes]], ingest_url: str, publish_directly: Callable[[list[bytes]], None]
                       ) -> tuple[int, int]:
    """Sends every record; returns (records sent through the ingest, records published directly)."""
    through_ingest, direct = 0, []
    with requests.Session() as session:
        for name, records in files.items():
            if name.startswith("kong-"):
                for record in records:
                    _post(session, f"{ingest_url}/kong/http-log", record,
                          {"X-Gatewaystream-Token": INGEST_CREDENTIALS["GATEWAYSTREAM_INGEST_KONG_TOKEN"]})
            elif name.startswith("moesif-"):
                for record in records:
                    _post(session, f"{ingest_url}/v1/events/batch", gzip.compress(b"[" + record + b"]"),
                          {"X-Moesif-Application-Id": INGEST_CREDENTIALS["GATEWAYSTREAM_INGEST_APPLICATION_IDS"],
                           "Content-Encoding": "gzip"})
            elif name.startswith("aws-"):
                for start in range(0, len(records), FIREHOSE_RECORDS_PER_DELIVERY):
                    _firehose(session, ingest_url, records[start:start + FIREHOSE_RECORDS_PER_DELIVERY])
            else:
                direct.extend(records)
                continue
            through_ingest += len(records)
    publish_directly(direct)
    return through_ingest, len(direct)


def _firehose(session: requests.Session, ingest_url: str, records: list[bytes]) -> None:
    request_id = str(uuid.uuid4())
    body = {"requestId": request_id, "timestamp": int(time.time() * 1000),
            "records": [{"data": base64.b64encode(record).decode()} for record in records]}
    _post(session, f"{ingest_url}/firehose", gzip.compress(orjson.dumps(body)),
          {"X-Amz-Firehose-Request-Id": request_id, "Content-Encoding": "gzip",
           "X-Amz-Firehose-Access-Key": INGEST_CREDENTIALS["GATEWAYSTREAM_INGEST_FIREHOSE_ACCESS_KEY"]})


def _post(session: requests.Session, url: str, body: bytes, headers: dict[str, str]) -> None:
    answer = session.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=60)
    if answer.status_code >= 300:
        raise RuntimeError(f"the ingest answered {answer.status_code} to {url}: {answer.text[:200]}")
