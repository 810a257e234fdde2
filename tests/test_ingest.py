"""The front door (issue 23): ``python -m pipeline.ingest`` in front of the real Pub/Sub emulator (and kinesalite),
with real clients — Moesif's Python SDK, its WSGI middleware around a Flask app, Kong http-log bodies as the
plugin posts them, Firehose requests built to AWS's specification — and, end to end, the pipeline and the
collector behind it."""
import base64
import gzip
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import orjson
import pytest
import requests

from devtools.local_services import (
    INGEST_CREDENTIALS,
    Service,
    create_stream,
    create_topic_and_subscription,
    dead_letters_in,
    free_port,
    local_kinesis_client,
    pull,
    start_ingest,
    start_pipeline,
    wait_for,
)
from devtools.sample_traffic import aws_access_log, kong_record
from pipeline.ingest.bodies import BodyRejected, firehose_messages, inflate, split_array
from tests.conftest import APPLICATION_ID, ROOT
from transforms.model.records import RawRecord
from transforms.stages.decode import decode_record

MOESIF_APP_ID = INGEST_CREDENTIALS["GATEWAYSTREAM_INGEST_APPLICATION_IDS"]
KONG_TOKEN = INGEST_CREDENTIALS["GATEWAYSTREAM_INGEST_KONG_TOKEN"]
FIREHOSE_KEY = INGEST_CREDENTIALS["GATEWAYSTREAM_INGEST_FIREHOSE_ACCESS_KEY"]
LOCAL_NOWHERE = "http://127.0.0.1:9"  # where Moesif's clients are left pointing: nothing listens on port 9


# --- bodies, without a server --------------------------------------------------------------------------------

def test_a_gzip_bomb_is_refused_while_inflating():
    bomb = gzip.compress(b"[" + b" " * (512 * 1024 * 1024) + b"]")  # 512 MiB of spaces in ~500 KiB
    with pytest.raises(BodyRejected) as refused:
        inflate(bomb, "gzip", 50 * 1024 * 1024)
    assert refused.value.status == 413 and "inflates past 52428800" in refused.value.reason


@pytest.mark.parametrize(("body", "encoding", "status"), [
    (b"\x1f\x8b\x08\x00garbage", "gzip", 400),
    (gzip.compress(b'{"a": 1}')[:-6], "gzip", 400),  # cut short
    (b"{}", "br", 415),
    (b"{}", "deflate", 415),
])
def test_bad_encodings(body, encoding, status):
    with pytest.raises(BodyRejected) as refused:
        inflate(body, encoding, 1024)
    assert refused.value.status == status


def test_split_at_element_boundaries():
    items = [{"n": n, "pad": "x" * 90} for n in range(50)]
    chunks = split_array(items, 1000)
    assert all(len(chunk) <= 1000 for chunk in chunks) and len(chunks) > 5
    assert [item for chunk in chunks for item in orjson.loads(chunk)] == items
    with pytest.raises(BodyRejected) as refused:
        split_array([{"big": "x" * 2000}], 1000)
    assert refused.value.status == 413


def test_firehose_split_keeps_the_request_shape():
    records = [{"data": base64.b64encode(b"x" * 300).decode()} for _ in range(20)]
    messages = firehose_messages("rid-7", records, 2000)
    assert len(messages) > 1 and all(len(message) <= 2000 for message in messages)
    bodies = [orjson.loads(message) for message in messages]
    assert all(body["requestId"] == "rid-7" for body in bodies)
    assert [record for body in bodies for record in body["records"]] == records


# --- against the real emulator ---------------------------------------------------------------------------------

@pytest.fixture
def topic(pubsub_emulator):
    suffix = uuid.uuid4().hex[:8]
    return create_topic_and_subscription(pubsub_emulator, f"ingest-{suffix}", f"ingest-sub-{suffix}")


@pytest.fixture
def ingest(pubsub_emulator, topic, tmp_path):
    service, url = start_ingest(tmp_path, [f"--topic={topic[0]}"], {"PUBSUB_EMULATOR_HOST": pubsub_emulator},
                                ("--max_body_bytes=1048576", "--max_decompressed_bytes=4194304"))
    yield url
    service.stop()
    assert KONG_TOKEN not in service.log_path.read_text() and MOESIF_APP_ID not in service.log_path.read_text()


def moesif_headers(**extra):
    return {"X-Moesif-Application-Id": MOESIF_APP_ID, "Content-Type": "application/json", **extra}


@pytest.mark.integration
@pytest.mark.parametrize(("path", "headers", "body", "status", "reason"), [
    ("/v1/events/batch", {"X-Moesif-Application-Id": "wrong-id"}, b"[]", 401, "X-Moesif-Application-Id"),
    ("/v1/events/batch", {}, b"[]", 401, "X-Moesif-Application-Id"),
    ("/v1/events/batch", moesif_headers(), b"[{]", 400, "not JSON"),
    ("/v1/events/batch", moesif_headers(), b'{"request": {}}', 400, "JSON array"),
    ("/v1/events", moesif_headers(), b"[{}]", 400, "JSON object"),
    ("/v1/events/batch", moesif_headers(), b"[" + b" " * 1_100_000 + b"]", 413, "(limit 1048576)"),
    ("/v1/events/batch", moesif_headers(**{"Content-Encoding": "gzip"}),
     gzip.compress(b"[" + b" " * 5_000_000 + b"]"), 413, "inflates past"),
    ("/kong/http-log", {"X-Gatewaystream-Token": "guess"}, b"{}", 401, "X-Gatewaystream-Token"),
    ("/kong/http-log", {"X-Gatewaystream-Token": KONG_TOKEN}, b'"text"', 400, "JSON object"),
    ("/v1/users", moesif_headers(), b"{}", 501, "--api_endpoint"),
])
def test_refusals_name_the_problem_in_one_line(ingest, path, headers, body, status, reason):
    answer = requests.post(ingest + path, data=body, headers=headers, timeout=30)
    assert answer.status_code == status
    message = answer.json()["error"]
    assert reason in message and "\n" not in message


@pytest.mark.integration
def test_nothing_refused_is_published(ingest, pubsub_emulator, topic):
    for headers, body in (({"X-Moesif-Application-Id": "wrong-id"}, b"[{}]"), (moesif_headers(), b"[{]"),
                          (moesif_headers(), b'"x"')):
        assert requests.post(ingest + "/v1/events/batch", data=body, headers=headers, timeout=30).status_code >= 400
    accepted = requests.post(ingest + "/v1/events/batch", data=b'[{"request": {}}]', headers=moesif_headers(),
                             timeout=30)
    assert accepted.status_code == 201  # deeper validation is the pipeline's: it will dead-letter this one
    messages = pull(pubsub_emulator, topic[1], at_least=2, timeout=5)
    assert [message.data for message in messages] == [b'[{"request": {}}]']


@pytest.mark.integration
def test_moesif_config_and_rules_let_clients_send_everything(ingest):
    config = requests.get(ingest + "/v1/config", headers=moesif_headers(), timeout=10)
    assert config.status_code == 200 and config.json()["sample_rate"] == 100
    assert config.headers["X-Moesif-Config-ETag"]
    assert requests.get(ingest + "/v1/rules", headers=moesif_headers(), timeout=10).json() == []


@pytest.mark.integration
def test_firehose_answers_to_the_specification(ingest, pubsub_emulator, topic):
    lines = [aws_access_log(n, random.Random(n)) for n in range(3)]
    body = {"requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f", "timestamp": 1578090901599,
            "records": [{"data": base64.b64encode(orjson.dumps(line)).decode()} for line in lines]}
    headers = {"X-Amz-Firehose-Request-Id": body["requestId"], "X-Amz-Firehose-Access-Key": FIREHOSE_KEY,
               "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/api-logs",
               "Content-Type": "application/json", "Content-Encoding": "gzip",
               "User-Agent": "Amazon Kinesis Data Firehose Agent/1.0"}
    answer = requests.post(ingest + "/firehose", data=gzip.compress(orjson.dumps(body)), headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["requestId"] == body["requestId"] and abs(answer.json()["timestamp"] / 1000 - time.time()) < 60
    [message] = pull(pubsub_emulator, topic[1], at_least=1)
    assert message.attributes["format"] == "firehose" and "received_at" in message.attributes
    assert orjson.loads(message.data) == {"requestId": body["requestId"], "records": body["records"]}

    wrong = requests.post(ingest + "/firehose", data=orjson.dumps(body),
                          headers={**headers, "X-Amz-Firehose-Access-Key": "nope", "Content-Encoding": "identity"},
                          timeout=30)
    assert wrong.status_code == 401 and set(wrong.json()) == {"requestId", "timestamp", "errorMessage"}


@pytest.mark.integration
def test_an_unreachable_broker_is_a_503_with_retry_after(tmp_path):
    dead_emulator = f"127.0.0.1:{free_port()}"  # nothing listens there
    service, url = start_ingest(tmp_path, ["--topic=projects/local/topics/nowhere", "--publish_timeout_secs=2"],
                                {"PUBSUB_EMULATOR_HOST": dead_emulator})
    try:
        answer = requests.post(url + "/kong/http-log", data=orjson.dumps(kong_record("3.9", 1, random.Random(1))),
                               headers={"X-Gatewaystream-Token": KONG_TOKEN}, timeout=30)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert "did not acknowledge" in answer.json()["error"]
    finally:
        service.stop()


@pytest.mark.integration
def test_a_full_in_flight_budget_is_a_503(pubsub_emulator, topic, tmp_path):
    service, url = start_ingest(tmp_path, [f"--topic={topic[0]}", "--max_in_flight_bytes=4096",
                                           "--max_body_bytes=4096"], {"PUBSUB_EMULATOR_HOST": pubsub_emulator})
    try:
        small = requests.post(url + "/kong/http-log", data=b'{"a": 1}', headers={"X-Gatewaystream-Token": KONG_TOKEN},
                              timeout=30)
        assert small.status_code == 200
        # Chunked, so the size is unknown: the ingest reserves its whole body limit, which is the whole budget.
        big = requests.post(url + "/kong/http-log", data=iter([b'{"pad": "', b"x" * 3000, b'"}']),
                            headers={"X-Gatewaystream-Token": KONG_TOKEN}, timeout=30)
        assert big.status_code == 503 and big.headers["Retry-After"] == "5"
        assert "in-flight budget" in big.json()["error"]
    finally:
        service.stop()


@pytest.mark.integration
def test_kinesis_as_the_broker_splits_at_record_boundaries(kinesis_server, tmp_path):
    stream = f"ingest-{uuid.uuid4().hex[:8]}"
    create_stream(kinesis_server, stream, 1)
    environment = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    service, url = start_ingest(tmp_path, [f"--kinesis_stream={stream}", f"--kinesis_endpoint_url={kinesis_server}",
                                           "--aws_region=us-east-1"], environment)
    rng = random.Random(3)
    batch = [kong_record("3.9", n, rng) for n in range(600)]  # ~700 KB each 300: more than one 1 MiB record
    for record in batch:
        record["request"]["headers"]["x-pad"] = "p" * 1500
    try:
        answer = requests.post(url + "/kong/http-log", data=gzip.compress(orjson.dumps(batch)),
                               headers={"X-Gatewaystream-Token": KONG_TOKEN, "Content-Encoding": "gzip"}, timeout=60)
        assert answer.status_code == 200, answer.text
        too_big = requests.post(url + "/kong/http-log", data=orjson.dumps({"pad": "x" * 1_100_000}),
                                headers={"X-Gatewaystream-Token": KONG_TOKEN}, timeout=60)
        assert too_big.status_code == 413 and "one element" not in too_big.json()["error"]
    finally:
        service.stop()
    client = local_kinesis_client(kinesis_server)
    shard = client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = client.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert len(records) >= 2 and all(len(record["Data"]) <= 1024 * 1024 for record in records)
    assert [item for record in records for item in orjson.loads(record["Data"])] == batch


@pytest.mark.integration
def test_real_clients_through_ingest_pubsub_pipeline_to_the_collector(pubsub_emulator, topic, collector, tmp_path):
    """Moesif's SDK, moesifwsgi around Flask, Kong http-log bodies and a Firehose delivery, all through the
    ingest and the emulator into ``python -m pipeline``: the exact events arrive at the collector."""
    from flask import Flask
    from moesifapi.configuration import Configuration
    from moesifapi.models import EventModel, EventRequestModel, EventResponseModel
    from moesifapi.moesif_api_client import MoesifAPIClient
    from moesifwsgi import MoesifMiddleware

    service, ingest_url = start_ingest(tmp_path, [f"--topic={topic[0]}"], {"PUBSUB_EMULATOR_HOST": pubsub_emulator})
    pipeline = start_pipeline(
        ["--runner=DirectRunner", f"--subscription={topic[1]}", f"--api_endpoint={collector.url}",
         f"--dead_letter={tmp_path / 'dl'}", "--max_batch_delay_secs=1"], tmp_path,
        {"PUBSUB_EMULATOR_HOST": pubsub_emulator, "GATEWAYSTREAM_APPLICATION_ID": APPLICATION_ID})
    middleware = None
    try:
        # 1. Moesif's Python SDK, its base URI pointed at the ingest.
        Configuration.BASE_URI = ingest_url
        api = MoesifAPIClient(MOESIF_APP_ID).api
        started = datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=timezone.utc)

        def sdk_event(n: int) -> EventModel:
            return EventModel(
                request=EventRequestModel(time=started, uri=f"https://api.acme.io/v1/orders/{n}?token=t0p-s3cret",
                                          verb="GET", headers={"Authorization": "Bearer abc.def.ghi"},
                                          ip_address="203.0.113.5"),
                response=EventResponseModel(time=started.replace(microsecond=168000), status=200,
                                            headers={"Content-Type": "application/json"}, body={"id": n}),
                user_id=f"sdk-user-{n}", company_id="acme", transaction_id=f"sdk-{n}")
        api.create_events_batch([sdk_event(n) for n in range(3)])
        api.create_event(sdk_event(3))

        # 2. moesifwsgi around a Flask app: the middleware batches and posts to its BASE_URI.
        app = Flask("shop")

        @app.route("/v1/carts/<int:cart_id>", methods=["DELETE"])
        def delete_cart(cart_id: int):
            return {"deleted": cart_id}, 202

        middleware = app.wsgi_app = MoesifMiddleware(app.wsgi_app, {
            "APPLICATION_ID": MOESIF_APP_ID, "BASE_URI": ingest_url, "BATCH_SIZE": 1, "EVENT_BATCH_TIMEOUT": 1,
            "IDENTIFY_USER": lambda app, environ, response_headers=None: "wsgi-user"})
        assert app.test_client().delete("/v1/carts/77").status_code == 202

        # 3. Kong http-log: one record, and a queue's batch, as the plugin posts them.
        rng = random.Random(9)
        kong_single = kong_record("3.9", 1, rng)
        kong_batch = [kong_record("3.6", 2 + n, rng) for n in range(3)]
        for body in (kong_single, kong_batch):
            answer = requests.post(f"{ingest_url}/kong/http-log", data=orjson.dumps(body), timeout=30,
                                   headers={"Content-Type": "application/json", "X-Gatewaystream-Token": KONG_TOKEN,
                                            "User-Agent": "lua-resty-http/0.17.1 (Lua) ngx_lua/10026"})
            assert answer.status_code == 200, answer.text

        # 4. Firehose: two access-log lines.
        lines = [aws_access_log(n, random.Random(40 + n)) for n in range(2)]
        delivery = {"requestId": str(uuid.uuid4()), "timestamp": int(time.time() * 1000),
                    "records": [{"data": base64.b64encode(orjson.dumps(line)).decode()} for line in lines]}
        answer = requests.post(f"{ingest_url}/firehose", data=gzip.compress(orjson.dumps(delivery)), timeout=30,
                               headers={"X-Amz-Firehose-Request-Id": delivery["requestId"],
                                        "X-Amz-Firehose-Access-Key": FIREHOSE_KEY, "Content-Encoding": "gzip",
                                        "Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["requestId"] == delivery["requestId"]

        expected = 4 + 1 + 4 + 2
        wait_for(lambda: collector.store.counts()["events"] >= expected or not pipeline.running(), timeout=180,
                 what=f"{expected} events at the collector")
        assert pipeline.running(), pipeline.log_tail()
    finally:
        if middleware is not None:
            middleware._shutdown()  # its config job polls BASE_URI every 60 s (the middleware's own atexit handler)
        # Configuration is process-wide: it stays on 127.0.0.1, so that no late call of a client reaches Moesif.
        Configuration.BASE_URI = LOCAL_NOWHERE
        pipeline.stop()
        service.stop()

    events = {event["transaction_id"]: event for event in collector.store.events()}
    assert len(events) == expected == collector.store.counts()["events"]
    assert dead_letters_in(tmp_path / "dl") == []
    for n in range(4):
        event = events[f"sdk-{n}"]
        assert event["request"] == {"time": "2026-11-25T10:00:00.123Z",
                                    "uri": f"https://api.acme.io/v1/orders/{n}?token=*****", "verb": "GET",
                                    "headers": {"Authorization": "*****"}, "ip_address": "203.0.113.5"}
        assert event["response"]["time"] == "2026-11-25T10:00:00.168Z" and event["response"]["body"] == {"id": n}
        assert (event["user_id"], event["company_id"], event["metadata"]["route"]) == (
            f"sdk-user-{n}", "acme", "/v1/orders/{id}")
    [wsgi] = [event for event in events.values() if event.get("user_id") == "wsgi-user"]
    assert (wsgi["request"]["verb"], wsgi["request"]["uri"], wsgi["response"]["status"]) == (
        "DELETE", "http://localhost/v1/carts/77", 202)
    assert wsgi["metadata"]["route"] == "/v1/carts/{id}"
    for record in [kong_single, *kong_batch]:
        event = events[record["request"]["id"]]
        assert (event["request"]["verb"], event["response"]["status"]) == (record["request"]["method"],
                                                                        record["response"]["status"])
        assert event["metadata"]["gateway"] == "kong"
    for line in lines:
        assert events[line["requestId"]]["metadata"]["gateway"] == "aws_apigateway"
    serialized = json.dumps(list(events.values()))
    assert "t0p-s3cret" not in serialized and "abc.def.ghi" not in serialized


def test_console_script_and_one_line_start_errors():
    script = ROOT / ".venv" / "bin" / "gatewaystream-ingest"
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--topic" in helped.stdout and "--max_in_flight_bytes" in helped.stdout
    refused = subprocess.run([str(script), "--topic=projects/p/topics/t", "--kinesis_stream=s"], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "python -m pipeline.ingest: error: give exactly one of --topic and --kinesis_stream"]


def self_signed_certificate(directory) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files (what --tls_cert/--tls_key take)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "ingest.crt", directory / "ingest.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.mark.integration
def test_tls(pubsub_emulator, topic, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    port = free_port()
    service = Service("ingest-tls", [sys.executable, "-m", "pipeline.ingest", f"--port={port}", f"--topic={topic[0]}",
                                     f"--tls_cert={cert}", f"--tls_key={key}"], tmp_path / "ingest-tls.log",
                      env={**os.environ, **INGEST_CREDENTIALS, "PUBSUB_EMULATOR_HOST": pubsub_emulator})
    try:
        url = f"https://127.0.0.1:{port}"
        wait_for(lambda: _https_ok(f"{url}/healthz", cert), timeout=30, what="the ingest over HTTPS")
        answer = requests.post(f"{url}/kong/http-log", data=b'{"a": 1}', verify=cert, timeout=30,
                               headers={"X-Gatewaystream-Token": KONG_TOKEN})
        assert answer.status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)  # plain HTTP is not served
    finally:
        service.stop()


def _https_ok(url: str, cert: str) -> bool:
    try:
        return requests.get(url, verify=cert, timeout=2).status_code == 200
    except requests.exceptions.RequestException:
        return False


@pytest.mark.integration
def test_moesif_profile_calls_are_relayed_unchanged(pubsub_emulator, topic, collector, tmp_path):
    from moesifapi.configuration import Configuration
    from moesifapi.models import CompanyModel, UserModel
    from moesifapi.moesif_api_client import MoesifAPIClient

    service, url = start_ingest(tmp_path, [f"--topic={topic[0]}"], {"PUBSUB_EMULATOR_HOST": pubsub_emulator},
                                (f"--api_endpoint={collector.url}",))
    try:
        Configuration.BASE_URI = url
        api = MoesifAPIClient(MOESIF_APP_ID).api
        api.update_user(UserModel(user_id="cust-0042", company_id="acme", metadata={"plan": "pro"}))
        api.update_companies_batch([CompanyModel(company_id="acme", metadata={"seats": 12})])
        refused = requests.post(f"{url}/v1/users", data=b"{}", headers={"X-Moesif-Application-Id": "wrong"},
                                timeout=10)
        assert refused.status_code == 401  # checked by the ingest before anything is relayed
    finally:
        Configuration.BASE_URI = LOCAL_NOWHERE
        service.stop()
    profiles = collector.profiles
    assert [path for path, _ in profiles] == ["/v1/users", "/v1/companies/batch"]
    assert (profiles[0][1]["user_id"], profiles[0][1]["metadata"]) == ("cust-0042", {"plan": "pro"})
    assert (profiles[1][1]["company_id"], profiles[1][1]["metadata"]) == ("acme", {"seats": 12})


@pytest.mark.integration
def test_a_large_batch_is_split_into_records_the_pipeline_accepts(pubsub_emulator, topic, tmp_path):
    """A 3 MB http-log batch (the broker would take it whole) is published as messages no larger than the
    pipeline's --max_record_bytes (1 MiB), cut between records, so that none is dead-lettered record_too_large."""
    service, url = start_ingest(tmp_path, [f"--topic={topic[0]}"], {"PUBSUB_EMULATOR_HOST": pubsub_emulator})
    rng = random.Random(4)
    batch = [kong_record("3.9", n, rng) for n in range(700)]
    for record in batch:
        record["request"]["headers"]["x-pad"] = "p" * 3500
    body = orjson.dumps(batch)
    try:
        answer = requests.post(url + "/kong/http-log", data=gzip.compress(body), timeout=60,
                               headers={"X-Gatewaystream-Token": KONG_TOKEN, "Content-Encoding": "gzip"})
        assert answer.status_code == 200, answer.text
    finally:
        service.stop()
    assert len(body) > 3 * 1024 * 1024
    messages = pull(pubsub_emulator, topic[1], at_least=4, timeout=30)
    assert len(messages) >= 4 and all(len(message.data) <= 1024 * 1024 for message in messages)
    received = sorted((item for message in messages for item in orjson.loads(message.data)),
                      key=lambda record: record["request"]["id"])
    assert received == sorted(batch, key=lambda record: record["request"]["id"])
    decoded = [decode_record(RawRecord(message.data, "pubsub", message.attributes["format"])) for message in messages]
    assert sum(len(result.events) for result in decoded) == 700
    assert [letter for result in decoded for letter in result.dead_letters] == []
