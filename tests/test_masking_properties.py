"""No planted secret leaves the pipeline (SPEC §5): property-based over where secrets are planted, and end to
end through the real CLI, whose logs and deliver-stage dead letters are searched too."""
import base64
import gzip
import secrets

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.local_services import dead_letters_in, free_port
from tests.conftest import run_cli
from tests.test_decode import KONG_39
from transforms.model.records import RawRecord
from transforms.stages.decode import decode_record
from transforms.stages.identity import IdentitySettings, identify
from transforms.stages.masking import ALWAYS_MASKED_HEADERS, DEFAULT_QUERY_MASKS, MaskSettings, mask_event

HEADER_MASKS = ("X-Internal-Token", "X-Session")
QUERY_MASKS = ("session",)
BODY_MASKS = ("password", "ssn", "card.number")
RESPONSE_BODY_MASKS = ("secret", "refresh_token")
SETTINGS = MaskSettings(request_header_masks=HEADER_MASKS, response_header_masks=HEADER_MASKS,
                        request_query_masks=QUERY_MASKS, request_body_masks=BODY_MASKS,
                        response_body_masks=RESPONSE_BODY_MASKS)
LOCATIONS = ("request_header", "response_header", "uri_query", "upstream_uri", "kong_querystring", "request_body",
             "request_body_path", "response_body_base64", "response_body_gzip", "metadata_url")


def any_case(draw, name: str) -> str:
    return "".join(char.upper() if draw(st.booleans()) else char.lower() for char in name)


@st.composite
def planted_records(draw):
    """A Kong record and body/metadata additions with secrets planted under masked names, in random case,
    at random places; returns (record, additions, secrets)."""
    record = orjson.loads(orjson.dumps(KONG_39))
    request, response = record["request"], record["response"]
    record["upstream_uri"] = "/v1/users/me"
    request["querystring"] = {}
    additions = {"request_body": {"profile": {"name": "ann"}}, "response_body": {"ok": True}, "metadata_url": None}
    planted = []
    for _ in range(draw(st.integers(1, 6))):
        secret = "S3CR3T" + secrets.token_hex(8)
        planted.append(secret)
        location = draw(st.sampled_from(LOCATIONS))
        if location in ("request_header", "response_header"):
            name = any_case(draw, draw(st.sampled_from(HEADER_MASKS + ALWAYS_MASKED_HEADERS)))
            (request if location == "request_header" else response)["headers"][name] = secret
        elif location in ("uri_query", "upstream_uri", "kong_querystring"):
            name = any_case(draw, draw(st.sampled_from(QUERY_MASKS + DEFAULT_QUERY_MASKS)))
            request["url"] += ("&" if "?" in request["url"] else "?") + f"{name}={secret}"
            record["upstream_uri"] += ("&" if "?" in record["upstream_uri"] else "?") + f"{name}={secret}"
            request["querystring"][name] = secret
        elif location == "request_body":
            name = any_case(draw, draw(st.sampled_from(("password", "ssn"))))
            node = additions["request_body"]
            for level in range(draw(st.integers(0, 4))):
                node = node.setdefault(f"level{level}", {}) if draw(st.booleans()) else \
                    node.setdefault(f"list{level}", [{}])[0]
            node[name] = secret
        elif location == "request_body_path":
            additions["request_body"].setdefault(any_case(draw, "card"), {})[any_case(draw, "number")] = secret
        elif location in ("response_body_base64", "response_body_gzip"):
            name = any_case(draw, draw(st.sampled_from(RESPONSE_BODY_MASKS)))
            additions["response_body"].setdefault("items", []).append({name: secret})
            additions["response_encoding"] = location.rsplit("_", 1)[1]
        else:
            name = any_case(draw, draw(st.sampled_from(QUERY_MASKS + DEFAULT_QUERY_MASKS)))
            additions["metadata_url"] = f"https://backend.internal/x?a=1&{name}={secret}"
    return record, additions, planted


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted_records())
def test_no_planted_secret_survives_identify_and_mask(planted):
    record, additions, secret_values = planted
    [item] = decode_record(RawRecord(orjson.dumps(record), "s")).events
    event = item.event
    event["request"]["body"] = additions["request_body"]
    body = orjson.dumps(additions["response_body"])
    encoding = additions.get("response_encoding")
    if encoding:
        event["response"]["body"] = base64.b64encode(gzip.compress(body) if encoding == "gzip" else body).decode()
        event["response"]["transfer_encoding"] = "base64"
    else:
        event["response"]["body"] = additions["response_body"]
    if additions["metadata_url"]:
        event["metadata"]["destination"] = additions["metadata_url"]
    output = orjson.dumps(mask_event(identify(event, IdentitySettings()), SETTINGS))
    for secret in secret_values:
        assert secret.encode() not in output


def moesif_event_with_secrets(index: int, planted: list[str]) -> dict:
    def secret() -> str:
        value = "S3CR3T" + secrets.token_hex(8)
        planted.append(value)
        return value

    body = {"user": {"PassWord": secret(), "items": [{"ssn": secret()}]}, "card": {"number": secret()}}
    return {
        "request": {"time": "2026-11-25T09:46:40.123Z", "verb": "POST",
                    "uri": f"https://api.acme.io/v1/pay?page=1&Access_Token={secret()}&session={secret()}",
                    "headers": {"authorization": f"Bearer {secret()}", "X-Internal-Token": secret(),
                                "content-type": "application/json"},
                    "body": body},
        "response": {"time": "2026-11-25T09:46:40.200Z", "status": 201, "headers": {"Set-Cookie": secret()},
                     "body": base64.b64encode(orjson.dumps({"refresh_token": secret()})).decode(),
                     "transfer_encoding": "base64"},
        "metadata": {"upstream": f"http://payments.internal/charge?api_key={secret()}"},
        "transaction_id": f"moesif-secret-{index}",
    }


def test_secrets_stay_out_of_logs_and_deliver_stage_dead_letters(tmp_path):
    planted: list[str] = []
    events = [moesif_event_with_secrets(index, planted) for index in range(20)]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(orjson.dumps(event) for event in events) + b"\n")
    config = tmp_path / "masks.yaml"
    config.write_text("request_header_masks: [X-Internal-Token]\nrequest_query_masks: [session]\n"
                      "request_masks: [password, ssn, card.number]\nresponse_masks: [refresh_token]\n")
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens: every batch fails to deliver
    result = run_cli(f"--input={tmp_path / 'in.jsonl'}", f"--api_endpoint={unreachable}", "--max_retry_secs=1",
                     f"--dead_letter={tmp_path / 'dl'}", f"--config={config}")
    assert result.returncode == 0, result.stderr[-2000:]
    letters = dead_letters_in(tmp_path / "dl")
    assert {letter["stage"] for letter in letters} == {"deliver"} and len(letters) == len(events)
    delivered = [orjson.loads(letter["payload"]) for letter in letters]
    assert sorted(event["transaction_id"] for event in delivered) == sorted(e["transaction_id"] for e in events)
    searched = result.stdout + result.stderr + repr(letters)
    leaked = [secret for secret in planted if secret in searched]
    assert leaked == []
    assert delivered[0]["request"]["body"]["card"]["number"] == "*****"
