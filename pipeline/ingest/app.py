"""The ingest's HTTP service (aiohttp): the Moesif collection API, Kong's http-log, and Amazon Data Firehose's
HTTP endpoint delivery, each written durably to the broker before it is answered.

Every request is checked for what the ingest must know before it accepts (credentials, size, encoding, that a
JSON body is JSON) and answered 400/401/413/415 with the reason in one line; the rest is the pipeline's decode
step's job. An accepted body is published with a ``format`` attribute and ``received_at``, split at element
boundaries when it is larger than one broker message; the answer is 2xx only once the broker acknowledged
every part. The broker unreachable, or the in-flight budget full, is a 503 with ``Retry-After``: never an
accepted-and-lost request, never unbounded memory (the budget counts every body being read, inflated, parsed
— estimated at ``PARSED_JSON_FACTOR`` times its text — or published). A split body whose publication failed
half-way is retried whole by the client; the pipeline's deterministic transaction ids let the collector drop
the repeated part.
"""
from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, web

from pipeline.ingest.bodies import (
    BodyRejected,
    firehose_messages,
    inflate,
    json_object_or_array,
    messages_for,
    parse_json,
)
from pipeline.ingest.brokers import Broker, BrokerUnavailable
from transforms.model.event import format_epoch_ms

LOG = logging.getLogger("gatewaystream.ingest")

# What GET /v1/config answers: Moesif's clients then sample every call (the real API answers the sampling rules
# configured in the Moesif dashboard; here the pipeline decides what leaves, so everything is sent to it).
MOESIF_CONFIG = MappingProxyType({
    "org_id": "", "app_id": "", "sample_rate": 100, "user_sample_rate": {}, "company_sample_rate": {},
    "user_rules": {}, "company_rules": {}, "regex_config": [], "ip_addresses_blocked_by_name": {}})
CONFIG_ETAG = "gatewaystream-sample-everything-1"
RELAYED_HEADERS = ("X-Moesif-Application-Id", "Content-Type", "Content-Encoding", "User-Agent")
PARSED_JSON_FACTOR = 3  # the budget's estimate of a parsed JSON body's memory, in multiples of its text


@dataclass(frozen=True)
class IngestSettings:
    """The ingest's checks and limits; each is an option of ``python -m pipeline.ingest`` (``--help``)."""

    application_ids: tuple[str, ...] = ()
    kong_token: str | None = None
    kong_token_header: str = "X-Gatewaystream-Token"
    firehose_access_key: str | None = None
    api_endpoint: str | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    max_decompressed_bytes: int = 50 * 1024 * 1024
    max_in_flight_bytes: int = 256 * 1024 * 1024
    max_message_bytes: int = 1024 * 1024
    retry_after_secs: int = 5


class InFlightBudget:
    """Bytes of request bodies being read, inflated or published; a request that would pass the limit waits for
    nothing: it is answered 503 at once. The event loop is single-threaded, so no lock is needed."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def try_acquire(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def release(self, size: int) -> None:
        self.used -= size


def matches_any(given: str | None, accepted: tuple[str, ...]) -> bool:
    """Whether ``given`` is one of ``accepted``, comparing each in constant time (no early exit on a match)."""
    if not given or not accepted:
        return False
    given_bytes = given.encode()
    found = False
    for secret in accepted:
        found |= hmac.compare_digest(given_bytes, secret.encode())
    return found


class _Reservation:
    """The budget a request holds; released once, whatever happens."""

    def __init__(self, budget: InFlightBudget):
        self._budget = budget
        self.size = 0

    def take(self, size: int, retry_after: int) -> None:
        if not self._budget.try_acquire(size):
            raise _Busy(f"the ingest holds {self._budget.used} bytes of its {self._budget.limit}-byte in-flight "
                        "budget", retry_after)
        self.size += size

    def release(self) -> None:
        self._budget.release(self.size)
        self.size = 0


class _Busy(Exception):
    def __init__(self, reason: str, retry_after: int):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def build_app(broker: Broker, settings: IngestSettings) -> web.Application:
    """The aiohttp application: every route, the budget and the relay's client session."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_log_refusals])
    handlers = _Handlers(broker, settings)
    app.router.add_post("/v1/events", handlers.moesif_event)
    app.router.add_post("/v1/events/batch", handlers.moesif_batch)
    app.router.add_get("/v1/config", handlers.moesif_config)
    app.router.add_route("*", "/v1/{rest:.*}", handlers.moesif_other)
    app.router.add_post("/kong/http-log", handlers.kong_http_log)
    app.router.add_post("/firehose", handlers.firehose)
    app.router.add_get("/healthz", handlers.healthz)
    app.on_cleanup.append(handlers.close)
    return app


@web.middleware
async def _log_refusals(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
    """One log line per refused request: method, path (never the query, a header or the body) and status."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        LOG.warning("%s %s -> %s %s", request.method, request.path, exc.status, exc.reason)
        raise
    if response.status >= 400:
        LOG.warning("%s %s -> %s", request.method, request.path, response.status)
    return response


class _Handlers:
    def __init__(self, broker: Broker, settings: IngestSettings):
        self._broker = broker
        self._settings = settings
        self._budget = InFlightBudget(settings.max_in_flight_bytes)
        self._session: ClientSession | None = None
        # A message must fit the broker and the pipeline's own --max_record_bytes, or it would be dead-lettered there.
        self._message_limit = min(broker.message_limit, settings.max_message_bytes)

    async def close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "broker": self._broker.name})

    # --- Moesif collection API -------------------------------------------------------------------------------

    async def moesif_event(self, request: web.Request) -> web.Response:
        return await self._moesif_events(request, single=True)

    async def moesif_batch(self, request: web.Request) -> web.Response:
        return await self._moesif_events(request, single=False)

    async def _moesif_events(self, request: web.Request, single: bool) -> web.Response:
        refused = self._moesif_refusal(request)
        if refused is not None:
            return refused

        def messages_of(body: bytes, value: Any) -> list[bytes]:
            if single and not isinstance(value, dict):
                raise BodyRejected(400, "POST /v1/events takes one event, a JSON object")
            if not single and not isinstance(value, list):
                raise BodyRejected(400, "POST /v1/events/batch takes a JSON array of events")
            return messages_for(body, value, self._message_limit)

        return await self._accept(request, "moesif", "events", messages_of, _json_answer(201, {}))

    async def moesif_config(self, request: web.Request) -> web.Response:
        refused = self._moesif_refusal(request)
        if refused is not None:
            return refused
        return web.json_response(dict(MOESIF_CONFIG), headers={"X-Moesif-Config-ETag": CONFIG_ETAG})

    async def moesif_other(self, request: web.Request) -> web.Response:
        """Users, companies, subscriptions, rules…: relayed unchanged to ``api_endpoint``, or refused with 501."""
        refused = self._moesif_refusal(request)
        if refused is not None:
            return refused
        if self._settings.api_endpoint is None:
            if request.method == "GET" and request.path == "/v1/rules":
                return web.json_response([])  # no governance rules: the clients block nothing
            return _error(501, f"{request.method} {request.path} is not collected by gatewaystream (only API "
                          "events are); start the ingest with --api_endpoint to relay it to the analytics API")
        return await self._relay(request)

    def _moesif_refusal(self, request: web.Request) -> web.Response | None:
        if not matches_any(request.headers.get("X-Moesif-Application-Id"), self._settings.application_ids):
            return _error(401, "missing or unknown X-Moesif-Application-Id")
        return None

    async def _relay(self, request: web.Request) -> web.Response:
        reservation = _Reservation(self._budget)
        try:
            reservation.take(request.content_length or self._settings.max_body_bytes, self._settings.retry_after_secs)
            body = await request.read()
            if self._session is None:
                self._session = ClientSession(timeout=ClientTimeout(total=30))
            headers = {name: request.headers[name] for name in RELAYED_HEADERS if name in request.headers}
            target = self._settings.api_endpoint.rstrip("/") + request.rel_url.path_qs
            async with self._session.request(request.method, target, data=body or None, headers=headers) as answer:
                payload = await answer.read()
                return web.Response(status=answer.status, body=payload,
                                    content_type=answer.content_type or "application/json")
        except _Busy as busy:
            return _error(503, busy.reason, {"Retry-After": str(busy.retry_after)})
        except (ClientError, TimeoutError) as exc:
            return _error(502, f"the analytics API could not be reached: {type(exc).__name__}",
                          {"Retry-After": str(self._settings.retry_after_secs)})
        finally:
            reservation.release()

    # --- Kong http-log -------------------------------------------------------------------------------------

    async def kong_http_log(self, request: web.Request) -> web.Response:
        token = self._settings.kong_token
        if not matches_any(request.headers.get(self._settings.kong_token_header), (token,) if token else ()):
            return _error(401, f"missing or wrong {self._settings.kong_token_header}")
        return await self._accept(request, "kong", "a Kong http-log body",
                                  lambda body, value: messages_for(body, value, self._message_limit),
                                  _json_answer(200, {"status": "ok"}))

    # --- Amazon Data Firehose HTTP endpoint delivery --------------------------------------------------------

    async def firehose(self, request: web.Request) -> web.Response:
        request_id = request.headers.get("X-Amz-Firehose-Request-Id", "")

        def answer(status: int, error: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
            payload: dict[str, Any] = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
            if error is not None:
                payload["errorMessage"] = error[:8192]
            return web.json_response(payload, status=status, headers=headers)

        if not request_id:
            return answer(400, "X-Amz-Firehose-Request-Id is required")
        access_key = self._settings.firehose_access_key
        if not matches_any(request.headers.get("X-Amz-Firehose-Access-Key"), (access_key,) if access_key else ()):
            return answer(401, "missing or wrong X-Amz-Firehose-Access-Key")

        def messages_of(body: bytes, value: Any) -> list[bytes]:
            records = value.get("records") if isinstance(value, dict) else None
            if not isinstance(records, list) or not all(isinstance(item, dict) for item in records):
                raise BodyRejected(400, "the body must be a JSON object with a records array")
            return firehose_messages(request_id, records, self._message_limit) if records else []

        return await self._accept(request, "firehose", None, messages_of,
                                  lambda status, error, headers: answer(status or 200, error, headers))

    # --- shared -----------------------------------------------------------------------------------------------

    async def _accept(self, request: web.Request, format_name: str, what: str | None,
                      messages_of: Callable[[bytes, Any], list[bytes]], answer: _Answer) -> web.Response:
        """Read, check, publish: the shared path of every source, which gives its messages and its answers."""
        reservation = _Reservation(self._budget)
        try:
            body, value = await self._read_json(request, reservation, what)
            messages = messages_of(body, value)
            if messages:
                await self._broker.publish(messages, _attributes(format_name))
            return answer(None, None, None)
        except BodyRejected as rejected:
            return answer(rejected.status, rejected.reason, None)
        except _Busy as busy:
            return answer(503, busy.reason, {"Retry-After": str(busy.retry_after)})
        except BrokerUnavailable as exc:
            return answer(503, str(exc), {"Retry-After": str(self._settings.retry_after_secs)})
        finally:
            reservation.release()

    async def _read_json(self, request: web.Request, reservation: _Reservation, what: str | None = None
                         ) -> tuple[bytes, Any]:
        """The inflated body and its JSON value, with the budget taken for both before they are in memory."""
        settings = self._settings
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            raise BodyRejected(413, f"the body is {request.content_length} bytes (limit {settings.max_body_bytes})")
        reservation.take(request.content_length or settings.max_body_bytes, settings.retry_after_secs)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise BodyRejected(413, f"the body is larger than {settings.max_body_bytes} bytes") from None
        # Inflating is synchronous, so no other request runs meanwhile: the room left in the budget is exact.
        room = self._budget.limit - self._budget.used
        limit = min(settings.max_decompressed_bytes, room)
        try:
            body = inflate(raw, request.headers.get("Content-Encoding"), limit)
        except BodyRejected as rejected:
            if rejected.status == 413 and limit < settings.max_decompressed_bytes:
                raise _Busy(f"the ingest has {room} bytes left of its in-flight budget",
                            settings.retry_after_secs) from None
            raise
        if body is not raw:
            reservation.take(len(body), settings.retry_after_secs)
        # Parsed JSON takes a few times its text in memory: that is held too while the body is checked and split.
        reservation.take(PARSED_JSON_FACTOR * len(body), settings.retry_after_secs)
        value = json_object_or_array(body, what) if what is not None else parse_json(body)
        return body, value


_Answer = Callable[[int | None, str | None, dict[str, str] | None], web.Response]


def _json_answer(status: int, payload: dict[str, Any]) -> _Answer:
    """The answers of the Moesif and Kong paths: ``payload`` when accepted, ``{"error": reason}`` otherwise."""

    def answer(error_status: int | None, reason: str | None, headers: dict[str, str] | None) -> web.Response:
        if error_status is None:
            return web.json_response(payload, status=status)
        return _error(error_status, reason or "", headers)

    return answer


def _attributes(format_name: str) -> dict[str, str]:
    return {"format": format_name, "received_at": format_epoch_ms(int(time.time() * 1000))}


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"error": reason}), content_type="application/json",
                        headers=headers)
