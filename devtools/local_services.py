"""Real local services for ``run_local.sh`` and the tests: the Pub/Sub emulator, the collector, the
pipeline itself, each a process group on 127.0.0.1 that is stopped with everything it started."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from transforms.io.dead_letters import DEAD_LETTER_FILE_PREFIX, read_dead_letter_file

LOCAL_PROJECT = "gatewaystream-local"
KINESALITE_VERSION = "3.3.3"
KINESALITE_DIR = Path(__file__).resolve().parent.parent / ".kinesalite"
# Dummy credentials and a region for the local Kinesis and S3 servers: boto3 signs every request, kinesalite
# and moto accept any signature. Used only for 127.0.0.1.
LOCAL_AWS_ENVIRONMENT = MappingProxyType({
    "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
})
# kinesalite's CLI listens on every interface; this listens on 127.0.0.1 only. Stream changes take 50 ms
# instead of 500 ms so tests that split shards do not wait.
# kinesalite rethrows the error of a request whose client went away mid-body (index.js: `req.on('error', ...
# throw err)`), which ends the whole server; real Kinesis just drops that request. A test that kills a reader
# mid-GetRecords would take the session's server down with it, so such an error is logged and survived.
_KINESALITE_SERVER = """
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error('kinesalite: a client went away mid-request (' + err.message + '); request dropped');
    return;
  }
  console.error(err);
  process.exit(1);
});
const kinesalite = require('kinesalite');
const server = kinesalite({createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 100});
server.listen(Number(process.argv[1]), '127.0.0.1', (err) => {
  if (err) { console.error(err); process.exit(1); }
  console.log('kinesalite listening on 127.0.0.1:' + process.argv[1]);
});
"""


class MissingPrerequisite(RuntimeError):
    """Something the local run needs is not installed; the message says what and how to get it."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


def http_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return orjson.loads(response.read())


def stop_services_on_sigterm() -> None:
    """Makes SIGTERM (``kill``, ``timeout``, a cancelled job) interrupt this process as Ctrl-C does, so that its
    ``finally`` blocks stop every Service it started. Each Service runs in a session of its own, which a signal
    to this process does not reach: without this, a terminated run left its emulator, collector and streaming
    pipeline running, and the pipeline kept a core busy. Call it from the main thread of an entry point."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def with_project_on_path(env: dict[str, str] | None) -> dict[str, str]:
    """``env`` (default: this process's) with the project's root first on PYTHONPATH: the developer tools
    (``python -m devtools.collector``) and benchmarks are not installed, so a child started from another
    directory finds them there."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


class Service:
    """A subprocess in its own process group, logging to a file; ``stop`` ends the whole group."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=with_project_on_path(env), cwd=cwd,
            start_new_session=True,
        )

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def await_ready(self, ready: Callable[[], bool], timeout: float, failure: type[Exception]) -> None:
        """Waits until ``ready()``; if the process dies or time runs out, stops it and raises."""
        try:
            wait_for(lambda: ready() or not self.running(), timeout, f"the {self.name}")
        except TimeoutError:
            self.stop()
            raise
        if not self.running():
            tail = self.log_tail()
            self.stop()
            raise failure(f"the {self.name} did not start:\n{tail}")

    def stop(self, grace: float = 10.0) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        # The group may hold children that outlive their parent (gcloud starts java): end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


def start_pubsub_emulator(work_dir: Path, port: int | None = None, timeout: float = 60) -> tuple[Service, str]:
    """The gcloud Pub/Sub emulator on 127.0.0.1; returns the service and its ``host:port``."""
    if not shutil.which("gcloud"):
        raise MissingPrerequisite("gcloud not found: install the Google Cloud CLI and its Pub/Sub emulator "
                                  "(apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator)")
    if not shutil.which("java"):
        raise MissingPrerequisite("java not found: the Pub/Sub emulator needs a Java 11+ runtime "
                                  "(apt-get install default-jre-headless)")
    port = port or free_port()
    host_port = f"127.0.0.1:{port}"
    data_dir = work_dir / "pubsub-emulator"
    data_dir.mkdir(parents=True, exist_ok=True)
    service = Service(
        "pubsub-emulator",
        ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={host_port}",
         f"--project={LOCAL_PROJECT}", f"--data-dir={data_dir}", "--quiet"],
        work_dir / "pubsub-emulator.log",
    )
    service.await_ready(lambda: http_ok(f"http://{host_port}/"), timeout, MissingPrerequisite)
    return service, host_port


def create_topic_and_subscription(emulator_host: str, topic: str, subscription: str, ack_deadline_secs: int = 60
                                  ) -> tuple[str, str]:
    """Creates both on the emulator; returns their full paths."""
    from google.cloud import pubsub_v1

    with _emulator_environment(emulator_host):
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        topic_path = publisher.topic_path(LOCAL_PROJECT, topic)
        subscription_path = subscriber.subscription_path(LOCAL_PROJECT, subscription)
        publisher.create_topic(name=topic_path)
        subscriber.create_subscription(name=subscription_path, topic=topic_path,
                                       ack_deadline_seconds=ack_deadline_secs)
        subscriber.close()
    return topic_path, subscription_path


def publish(emulator_host: str, topic_path: str, messages: Iterable[bytes], attributes: dict[str, str] | None = None
            ) -> int:
    """Publishes every message and waits for each to be acknowledged by the emulator; returns the count."""
    from google.cloud import pubsub_v1

    with _emulator_environment(emulator_host):
        publisher = pubsub_v1.PublisherClient()
        futures = [publisher.publish(topic_path, data, **(attributes or {})) for data in messages]
        for future in futures:
            future.result(timeout=60)
    return len(futures)


def pull(emulator_host: str, subscription_path: str, at_least: int, timeout: float = 60) -> list[Any]:
    """Pulls and acks messages until ``at_least`` arrived or ``timeout`` passed; returns the PubsubMessages."""
    from google.cloud import pubsub_v1

    received: list[Any] = []
    deadline = time.monotonic() + timeout
    with _emulator_environment(emulator_host):
        subscriber = pubsub_v1.SubscriberClient()
        try:
            while len(received) < at_least and time.monotonic() < deadline:
                response = subscriber.pull(subscription=subscription_path, max_messages=100, timeout=10)
                received.extend(item.message for item in response.received_messages)
                if response.received_messages:
                    subscriber.acknowledge(subscription=subscription_path,
                                           ack_ids=[item.ack_id for item in response.received_messages])
        finally:
            subscriber.close()
    return received


@contextlib.contextmanager
def _emulator_environment(emulator_host: str) -> Iterator[None]:
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = emulator_host
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous


def install_kinesalite() -> Path:
    """kinesalite from npm into ``.kinesalite/`` (first use only, ~6 s); returns that directory."""
    if (KINESALITE_DIR / "node_modules" / "kinesalite" / "package.json").exists():
        return KINESALITE_DIR
    if not shutil.which("node") or not shutil.which("npm"):
        raise MissingPrerequisite("node and npm not found: the local Kinesis server (kinesalite) needs Node.js "
                                  "(apt-get install nodejs npm)")
    KINESALITE_DIR.mkdir(exist_ok=True)
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(KINESALITE_DIR),
         f"kinesalite@{KINESALITE_VERSION}"], capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        raise MissingPrerequisite(f"npm install kinesalite@{KINESALITE_VERSION} failed: {result.stderr.strip()}")
    return KINESALITE_DIR


def start_kinesalite(work_dir: Path, port: int | None = None, timeout: float = 30) -> tuple[Service, str]:
    """kinesalite (a Kinesis-compatible server) on 127.0.0.1; returns the service and its endpoint URL."""
    directory = install_kinesalite()
    port = port or free_port()
    service = Service("kinesalite", ["node", "-e", _KINESALITE_SERVER, str(port)], work_dir / "kinesalite.log",
                      cwd=directory)  # node -e resolves require() from the working directory
    service.await_ready(lambda: _listening(port), timeout, MissingPrerequisite)
    return service, f"http://127.0.0.1:{port}"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def local_kinesis_client(endpoint: str) -> Any:
    return _local_aws_client("kinesis", endpoint)


def create_stream(endpoint: str, name: str, shards: int, timeout: float = 30) -> None:
    """Creates a stream on the local Kinesis server and waits until it is ACTIVE."""
    client = local_kinesis_client(endpoint)
    client.create_stream(StreamName=name, ShardCount=shards)
    wait_for(lambda: client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
             == "ACTIVE", timeout, f"stream {name} to become ACTIVE", interval=0.05)


def put_records(endpoint: str, stream: str, records: Iterable[bytes], partition_key: Callable[[int], str] = str
                ) -> int:
    """Puts every record (500 per call, failed ones again); returns the count."""
    client = local_kinesis_client(endpoint)
    pending = [{"Data": data, "PartitionKey": partition_key(index)} for index, data in enumerate(records)]
    total = len(pending)
    while pending:
        chunk, pending = pending[:500], pending[500:]
        response = client.put_records(StreamName=stream, Records=chunk)
        failed = [entry for entry, result in zip(chunk, response["Records"], strict=True) if "ErrorCode" in result]
        pending = failed + pending
    return total


def start_s3_server(work_dir: Path, port: int | None = None, timeout: float = 30) -> tuple[Service, str]:
    """moto's S3-compatible server on 127.0.0.1, for ``s3://`` dead letters, archives, checkpoints and inputs;
    returns the service and its endpoint URL."""
    port = port or free_port()
    service = Service("S3 server", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                      work_dir / "s3.log")
    service.await_ready(lambda: _listening(port), timeout, MissingPrerequisite)
    return service, f"http://127.0.0.1:{port}"


def local_s3_options(endpoint: str, secret_access_key: str = LOCAL_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"]
                     ) -> list[str]:
    """Beam's S3 filesystem options (``apache_beam.options.pipeline_options.S3Options``) for the local server
    (which accepts any secret)."""
    return [f"--s3_endpoint_url={endpoint}", f"--s3_access_key_id={LOCAL_AWS_ENVIRONMENT['AWS_ACCESS_KEY_ID']}",
            f"--s3_secret_access_key={secret_access_key}", f"--s3_region_name={LOCAL_AWS_ENVIRONMENT['AWS_REGION']}"]


def local_s3_client(endpoint: str) -> Any:
    return _local_aws_client("s3", endpoint)


def _local_aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        region_name=LOCAL_AWS_ENVIRONMENT["AWS_REGION"],
    ).client(service, endpoint_url=endpoint)


def start_gcs_server(work_dir: Path, port: int | None = None, timeout: float = 30) -> tuple[Service, str]:
    """A GCS-compatible server (gcp-storage-emulator, in memory) on 127.0.0.1, for ``gs://`` paths; returns the
    service and its endpoint URL."""
    port = port or free_port()
    service = Service("GCS server", [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1",
                                     f"--port={port}", "--in-memory"], work_dir / "gcs.log")
    service.await_ready(lambda: _listening(port), timeout, MissingPrerequisite)
    return service, f"http://127.0.0.1:{port}"


def local_gcs_environment(endpoint: str, work_dir: Path) -> dict[str, str]:
    """Environment for a pipeline that reaches the local GCS server through Beam's GCS filesystem.

    google-cloud-storage goes to ``STORAGE_EMULATOR_HOST``. Beam first looks for Google credentials, retrying for
    ~25 s before it connects anonymously; credentials whose access token is valid for centuries are found at
    once and never refreshed, so nothing reaches Google's token endpoint."""
    credentials = work_dir / "local-gcs-credentials.json"
    credentials.write_bytes(orjson.dumps({
        "type": "authorized_user", "client_id": "local", "client_secret": "local", "refresh_token": "local",
        "token": "local", "expiry": "2999-01-01T00:00:00Z"}))
    return {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
            "GOOGLE_CLOUD_PROJECT": LOCAL_PROJECT}


def local_gcs_client(endpoint: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=LOCAL_PROJECT, credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": endpoint})


def start_collector(work_dir: Path, port: int | None = None, timeout: float = 30) -> tuple[Service, str]:
    """``python -m devtools.collector serve`` on 127.0.0.1; returns the service and its base URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    service = Service(
        "collector",
        [sys.executable, "-m", "devtools.collector", "serve", "--port", str(port),
         "--db", str(work_dir / "collector.db"), "--dead-letters", str(work_dir / "dead-letters")],
        work_dir / "collector.log",
    )
    service.await_ready(lambda: http_ok(f"{url}/health"), timeout, RuntimeError)
    return service, url


INGEST_CREDENTIALS = MappingProxyType({  # what the local ingest accepts; tests and run_local send these
    "GATEWAYSTREAM_INGEST_APPLICATION_IDS": "local-ingest-app-id",
    "GATEWAYSTREAM_INGEST_KONG_TOKEN": "local-kong-token",
    "GATEWAYSTREAM_INGEST_FIREHOSE_ACCESS_KEY": "local-firehose-key",
})


def start_ingest(work_dir: Path, broker_arguments: list[str], environment: dict[str, str],
                 extra_arguments: tuple[str, ...] = (), timeout: float = 30) -> tuple[Service, str]:
    """``python -m pipeline.ingest`` on 127.0.0.1 with ``INGEST_CREDENTIALS``; returns the service and its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = Service("ingest", [sys.executable, "-m", "pipeline.ingest", f"--port={port}", *broker_arguments,
                                 *extra_arguments],
                      work_dir / "ingest.log", env={**os.environ, **INGEST_CREDENTIALS, **environment})
    service.await_ready(lambda: http_ok(f"{url}/healthz"), timeout, RuntimeError)
    return service, url


def start_pipeline(arguments: list[str], work_dir: Path, environment: dict[str, str],
                   module: str = "pipeline") -> Service:
    """``python -m pipeline`` (or another entry ``module``) with ``arguments`` as a subprocess, logging to
    ``work_dir/pipeline.log``."""
    return Service("pipeline", [sys.executable, "-m", module, *arguments], work_dir / "pipeline.log",
                   env={**os.environ, **environment})


def dead_letters_in(directory: Path) -> list[dict]:
    """Every dead letter in a local dead-letter directory (only complete files: they appear by rename)."""
    if not directory.exists():
        return []
    letters: list[dict] = []
    for path in sorted(directory.glob(f"{DEAD_LETTER_FILE_PREFIX}*.avro")):
        letters.extend(read_dead_letter_file(str(path)))
    return letters


def count_items(record: bytes) -> int:
    """How many events or dead letters a well-behaved run turns one sample record into: a JSON array's
    length, a CloudWatch envelope's log events, an ALF document's entries, else one. An independent count,
    so the accounting does not trust the decoder it checks."""
    try:
        value = orjson.loads(record)
    except orjson.JSONDecodeError:
        return 1
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        if value.get("messageType") == "CONTROL_MESSAGE":
            return 0
        har = value.get("har")
        for items in (value.get("logEvents"), value.get("entries"), isinstance(har, dict) and har["log"]["entries"]):
            if isinstance(items, list):
                return len(items)
    return 1
