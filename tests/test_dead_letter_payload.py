"""What a decode dead letter keeps of its raw record (issue 26): masked by default, raw or none on request."""
from __future__ import annotations

import gzip
from collections import Counter

import orjson

from devtools.local_services import dead_letters_in
from tests.conftest import run_cli
from transforms.io.dead_letters import dead_letter
from transforms.model.records import RawRecord
from transforms.stages.dead_letter_payload import PayloadMasker, apply_payload_policy
from transforms.stages.decode import decode_record
from transforms.stages.masking import MaskSettings

TOKEN = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXN0LTAwMDkifQ.c2lnbmF0dXJl"
KONG_MISSING_STATUS = (
    '{"request": {"method": "GET", "url": "https://api.acme.io/v1/orders?apikey=sk_live_123&page=2", '
    '"headers": {"Authorization": "' + TOKEN + '", "x-card": "4111"}, "size": 10}, '
    '"response": {"headers": {"set-cookie": "session=abc123"}}, "started_at": 1795600000000, '
    '"body": {"password": "hunter2", "card": {"number": 4111111111111111}}}'
).encode()
SECRETS = (b"sk_live_123", b"eyJhbGciOi", b"session=abc123", b"hunter2", b"4111111111111111")


def masker() -> PayloadMasker:
    return PayloadMasker(MaskSettings(request_body_masks=("password", "card.number")))


def test_the_raw_text_is_masked_as_far_as_it_can_be_read():
    masked, note = masker().mask(KONG_MISSING_STATUS)
    assert note == "masked" and not any(secret in masked for secret in SECRETS)
    assert b'"Authorization": "*****"' in masked and b"apikey=*****&page=2" in masked
    assert b'"number": "*****"' in masked and b'"x-card": "4111"' in masked  # unmasked names are kept
    truncated, _ = masker().mask(KONG_MISSING_STATUS[:180])  # invalid JSON: masked all the same
    assert b"sk_live_123" not in truncated and TOKEN.encode()[:20] not in truncated
    envelope = orjson.dumps({"message": KONG_MISSING_STATUS.decode()})  # JSON escaped inside a string
    masked_envelope, _ = masker().mask(envelope)
    assert not any(secret in masked_envelope for secret in SECRETS), masked_envelope
    assert orjson.loads(masked_envelope)["message"].count("*****") == 5  # apikey, the three headers, body


def test_gzip_is_inflated_to_be_masked_and_what_cannot_be_read_is_withheld():
    masked, note = masker().mask(gzip.compress(gzip.compress(KONG_MISSING_STATUS)))
    assert note == "masked (inflated from gzip)" and not any(secret in masked for secret in SECRETS)
    assert masked == masker().mask(KONG_MISSING_STATUS)[0]
    withheld, note = masker().mask(gzip.compress(KONG_MISSING_STATUS)[:40])
    assert (withheld, note) == (b"", "withheld: corrupt_gzip cannot be read to mask it")
    binary, note = masker().mask(b"\xff\xfe apikey=x&\x80")  # not UTF-8: read byte for byte
    assert (binary, note) == (b"\xff\xfe apikey=*****&\x80", "masked")


def test_the_policy_applies_to_read_and_decode_dead_letters_only():
    [letter] = decode_record(RawRecord(KONG_MISSING_STATUS, "s")).dead_letters
    assert letter["payload_masking"] == "raw" and letter["payload"] == KONG_MISSING_STATUS
    assert apply_payload_policy(letter, "raw", masker()) == letter
    assert apply_payload_policy(letter, "none", masker())["payload"] == b""
    assert apply_payload_policy(letter, "masked", masker())["payload_masking"] == "masked"
    delivered = dead_letter("deliver", "http_400", "", "s", b'{"already": "masked"}')
    assert apply_payload_policy(delivered, "none", masker()) == delivered


def test_the_pipeline_masks_decode_dead_letters_by_default_and_replays_them(tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_bytes(KONG_MISSING_STATUS + b"\n")
    letters = {}
    for policy in ("masked", "raw", "none"):
        arguments = [f"--dead_letter_payload={policy}"] if policy != "masked" else []
        result = run_cli(f"--input={records}", f"--output={tmp_path / policy}", f"--dead_letter={tmp_path / policy}",
                         "--request_body_masks=password,card.number", *arguments)
        assert result.returncode == 0, result.stderr[-2000:]
        [letters[policy]] = dead_letters_in(tmp_path / policy)
    assert letters["raw"]["payload"] == KONG_MISSING_STATUS and letters["raw"]["payload_masking"] == "raw"
    assert (letters["none"]["payload"], letters["none"]["payload_masking"]) == (b"", "none")
    assert letters["masked"]["payload_masking"] == "masked"
    assert not any(secret in letters["masked"]["payload"] for secret in SECRETS)
    replay = run_cli(f"--input={tmp_path / 'masked'}/*.avro", f"--output={tmp_path / 'replayed'}",
                     f"--dead_letter={tmp_path / 'replayed-dl'}")
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert Counter(letter["reason"] for letter in dead_letters_in(tmp_path / "replayed-dl")) == Counter(
        {letters["masked"]["reason"]: 1})  # the masked record fails as the raw one did
