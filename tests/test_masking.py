"""Masking (SPEC §5), rule by rule with the exact expected output."""
import base64
import gzip
import hashlib
import hmac

import apache_beam as beam
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_identity import event as identity_event
from transforms.io.dead_letters import DEAD_LETTER_TAG
from transforms.model.records import SourcedEvent
from transforms.stages.identity import IdentitySettings, identify
from transforms.stages.masking import (
    MASK,
    MaskConfigError,
    MaskEvent,
    MaskSettings,
    _SizeBound,
    mask_event,
    mask_query,
    typed_mask,
)


def event(request_headers=None, response_headers=None, uri="https://a.io/x", **extra):
    return {
        "transaction_id": "t",
        "request": {"time": "2026-11-25T10:00:00.000Z", "uri": uri, "verb": "GET", "headers": request_headers or {}},
        "response": {"time": "2026-11-25T10:00:00.010Z", "status": 200, "headers": response_headers or {}},
        "direction": "Incoming",
        "weight": 1,
        **extra,
    }


def test_configured_headers_set_user_and_company_case_insensitively():
    settings = IdentitySettings(user_id_header="X-Consumer-Custom-Id", company_id_header="X-Org-Id")
    result = identify(event({"x-consumer-custom-id": "cust-1"}, {"X-ORG-ID": "acme"}, user_id="from-format"),
                      settings)
    assert (result["user_id"], result["company_id"]) == ("cust-1", "acme")


def test_format_default_user_stays_when_the_header_is_absent():
    result = identify(event(user_id="bob"), IdentitySettings())
    assert result["user_id"] == "bob" and "company_id" not in result


def test_credential_headers_are_always_masked_on_both_sides():
    masked = mask_event(
        event({"Authorization": "Bearer x", "COOKIE": "a=b", "x-api-key": "k", "accept": "*/*"},
              {"Set-Cookie": "s=1", "content-type": "text/plain"}),
        MaskSettings(),
    )
    assert masked["request"]["headers"] == {"Authorization": MASK, "COOKIE": MASK, "x-api-key": MASK, "accept": "*/*"}
    assert masked["response"]["headers"] == {"Set-Cookie": MASK, "content-type": "text/plain"}


def test_configured_header_masks_redact_rather_than_delete():
    masked = mask_event(event({"X-Internal": "v"}, {"x-trace": "t"}),
                        MaskSettings(request_header_masks=("x-internal",), response_header_masks=("X-Trace",)))
    assert masked["request"]["headers"] == {"X-Internal": MASK}
    assert masked["response"]["headers"] == {"x-trace": MASK}


def test_query_masks_hit_every_occurrence_case_insensitively_and_only_exact_names():
    names = MaskSettings(request_query_masks=("session",)).query_parameters
    uri = "https://a.io/x?APIKEY=1&page=2&apikey=3&access_token=4&my_token=5&session=6&token=&flag#frag"
    assert mask_query(uri, names) == (
        f"https://a.io/x?APIKEY={MASK}&page=2&apikey={MASK}&access_token={MASK}&my_token=5&session={MASK}"
        "&token=&flag#frag"
    )


def test_masking_does_not_modify_its_input():
    original = event({"authorization": "Bearer x"}, uri="https://a.io/?key=1")
    mask_event(original, MaskSettings())
    assert original["request"]["headers"]["authorization"] == "Bearer x"
    assert original["request"]["uri"] == "https://a.io/?key=1"


def test_unmasked_headers_opt_out_of_the_always_masked_list():
    masked = mask_event(event({"Authorization": "Basic x", "Cookie": "c"}),
                        MaskSettings(unmasked_headers=("AUTHORIZATION",)))
    assert masked["request"]["headers"] == {"Authorization": "Basic x", "Cookie": MASK}


def test_query_masks_reach_urls_inside_metadata():
    masked = mask_event(event(metadata={"upstream_uri": "/v1/x?Token=s3cr3t&page=1",
                                        "nested": {"destination": "https://b.io/?password=p#x"}, "count": 3}),
                        MaskSettings())
    assert masked["metadata"] == {"upstream_uri": f"/v1/x?Token={MASK}&page=1",
                                  "nested": {"destination": f"https://b.io/?password={MASK}#x"}, "count": 3}


BODY = {"user": {"Password": "p1", "name": "ann", "cards": [{"number": "4111", "cvv": "123"},
                                                              {"number": "5500", "CVV": "999"}]},
        "items": [{"password": "p2"}], "token": {"nested": "object masked whole"}, "note": "password"}


def test_body_masks_any_depth_case_insensitive_and_dotted_paths():
    settings = MaskSettings(request_body_masks=("password", "TOKEN", "user.cards.number"))
    masked = mask_event(event(body=None) | {"request": event()["request"] | {"body": BODY}}, settings)
    assert masked["request"]["body"] == {
        "user": {"Password": MASK, "name": "ann", "cards": [{"number": MASK, "cvv": "123"},
                                                            {"number": MASK, "CVV": "999"}]},
        "items": [{"password": MASK}], "token": MASK, "note": "password"}  # values are not names
    assert BODY["user"]["Password"] == "p1"  # the input is untouched


def with_bodies(request_body, response_body, encoding=None):
    result = event()
    result["request"]["body"] = request_body
    result["response"]["body"] = response_body
    if encoding:
        result["request"]["transfer_encoding"] = result["response"]["transfer_encoding"] = encoding
    return result


def test_base64_and_gzip_json_bodies_are_decoded_then_masked():
    plain = base64.b64encode(orjson.dumps({"secret": "s1", "ok": 1})).decode()
    zipped = base64.b64encode(gzip.compress(orjson.dumps([{"Secret": "s2"}]))).decode()
    settings = MaskSettings(request_body_masks=("secret",), response_body_masks=("secret",))
    masked = mask_event(with_bodies(plain, zipped, "base64"), settings)
    assert masked["request"]["body"] == {"secret": MASK, "ok": 1}
    assert masked["response"]["body"] == [{"Secret": MASK}]
    assert "transfer_encoding" not in masked["request"] and "transfer_encoding" not in masked["response"]


def test_a_gzip_body_of_concatenated_members_is_inflated_whole_then_masked():
    # `cat a.gz b.gz` is one legal gzip stream: the secret in the second member must be reached, not sent encoded.
    members = gzip.compress(b'{"ok": 1, ') + gzip.compress(b'"secret": "s2"}')
    encoded = base64.b64encode(members).decode()
    settings = MaskSettings(response_body_masks=("secret",))
    masked = mask_event(with_bodies(encoded, encoded, "base64"), settings)
    assert masked["response"]["body"] == {"ok": 1, "secret": MASK}
    assert "transfer_encoding" not in masked["response"]


def test_non_json_and_oversized_encoded_bodies_stay_base64():
    text = base64.b64encode(b"<xml>secret</xml>").decode()
    bomb = base64.b64encode(gzip.compress(b"[" + b"0," * 3_000_000 + b"0]")).decode()
    settings = MaskSettings(response_body_masks=("secret",), max_decompressed_bytes=1_000_000)
    masked = mask_event(with_bodies(text, bomb, "base64"), settings)
    assert (masked["request"]["body"], masked["request"]["transfer_encoding"]) == (text, "base64")
    assert (masked["response"]["body"], masked["response"]["transfer_encoding"]) == (bomb, "base64")


def test_body_size_limits_drop_the_body_and_say_so_in_metadata():
    big = {"blob": "x" * 200}
    settings = MaskSettings(request_max_body_size_limit=100, response_max_body_size_limit=1000)
    masked = mask_event(with_bodies(big, big) | {"metadata": {"gateway": "kong"}}, settings)
    assert "body" not in masked["request"] and masked["response"]["body"] == big
    assert masked["metadata"] == {"gateway": "kong", "request_body_dropped_bytes": len(orjson.dumps(big))}
    encoded = base64.b64encode(b"\0" * 150).decode()
    masked = mask_event(with_bodies(encoded, encoded, "base64"), settings)  # no metadata yet: it is created
    assert masked["metadata"] == {"request_body_dropped_bytes": 150}
    assert "transfer_encoding" not in masked["request"] and masked["response"]["body"] == encoded


@pytest.mark.parametrize("body_masks", [(), ("password", "card.number")])
def test_a_body_at_the_limit_is_kept_and_one_byte_over_it_is_dropped(body_masks):
    """With body masks the size comes from a bound taken during the mask walk, serialized only near the limit:
    the boundary must still be the exact serialized size, before masking."""
    body = {"password": "p", "card": {"number": "4111"}, "note": "é\u0001\"" * 20, "n": [1.5, -7, None, True]}
    size = len(orjson.dumps(body))
    for limit, kept in ((size, True), (size - 1, False)):
        settings = MaskSettings(request_body_masks=body_masks, request_max_body_size_limit=limit)
        masked = mask_event(with_bodies(body, body) | {"metadata": {}}, settings)
        assert ("body" in masked["request"]) is kept
        assert masked["metadata"] == ({} if kept else {"request_body_dropped_bytes": size})
        if kept and body_masks:
            masked_body = masked["request"]["body"]
            assert (masked_body["password"], masked_body["card"]) == (MASK, {"number": MASK})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@given(value=JSON_VALUES, masks=st.lists(st.sampled_from(("a", "b", "password", "x.y", "a.b.c")), max_size=3))
def test_the_walk_never_bounds_a_body_below_its_serialized_size(value, masks):
    bound = _SizeBound()
    MaskSettings(request_body_masks=tuple(masks)).request_body.apply(value, bound)
    assert bound.total >= len(orjson.dumps(value))


def test_capture_switches_and_send_headers_false():
    source = with_bodies({"a": 1}, {"b": 2})
    source["request"]["headers"] = {"Content-Type": "application/json", "Accept": "*/*", "X-Secret": "s",
                                    "User-Agent": "curl", "Authorization": "Bearer t"}
    source["response"]["headers"] = {"content-length": "2", "set-cookie": "c", "x-internal": "i"}
    settings = MaskSettings(disable_capture_request_body=True, send_headers=False)
    masked = mask_event(source, settings)
    assert "body" not in masked["request"] and masked["response"]["body"] == {"b": 2}
    assert masked["request"]["headers"] == {"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "curl"}
    assert masked["response"]["headers"] == {"content-length": "2"}
    assert mask_event(source, MaskSettings(disable_capture_response_body=True))["response"].get("body") is None


@pytest.mark.parametrize(("value", "kind", "expected"), [
    ("192.168.1.98", "IPV4", "192.168.***.98"),
    ("2001:db8:85a3::8a2e:370:7334", "IPV6", "2001:0db8:85a3:****:****:****:****:7334"),
    ("ann@example.com", "EMAIL", "*****@example.com"),
    ("bob@acme.com@carbon.super", "EMAIL", "*****@carbon.super"),
    ("Mozilla/5.0", "STRING", MASK),
    ("2001:db8::1", "IPV4", MASK),  # a value that does not fit its type is masked whole
    ("not-an-ip", "IPV6", MASK),
    ("no-at-sign", "EMAIL", MASK),
])
def test_typed_masks(value, kind, expected):
    assert typed_mask(value, kind) == expected


def test_field_masks_with_wso2_names_metadata_fields_and_a_salted_hash():
    source = event({"user-agent": "curl/8"}, user_id="ann@example.com", company_id="acme",
                   metadata={"application_owner": "owner@x.io", "user_agent": "Chrome", "ai": {"model": "m"}})
    source["request"]["ip_address"] = "10.1.2.3"
    settings = MaskSettings(field_masks=(("userIp", "IPV4"), ("userName", "EMAIL"), ("company_id", "HASH"),
                                         ("userAgent", "STRING"), ("applicationOwner", "EMAIL"),
                                         ("metadata.ai.model", "STRING")), hash_salt="pepper")
    masked = mask_event(source, settings)
    assert masked["request"]["ip_address"] == "10.1.***.3"
    assert masked["user_id"] == "*****@example.com"
    assert masked["company_id"] == hmac.new(b"pepper", b"acme", hashlib.sha256).hexdigest()
    assert masked["request"]["headers"] == {"user-agent": MASK}
    assert masked["metadata"] == {"application_owner": "*****@x.io", "user_agent": MASK, "ai": {"model": MASK}}
    assert "pepper" not in repr(settings)
    assert source["metadata"]["ai"]["model"] == "m" and source["user_id"] == "ann@example.com"


def test_bad_mask_settings_are_refused():
    with pytest.raises(MaskConfigError, match="unknown mask type 'IP'"):
        MaskSettings(field_masks=(("ip_address", "IP"),))
    with pytest.raises(MaskConfigError, match="HASH needs a salt"):
        MaskSettings(field_masks=(("user_id", "HASH"),))
    with pytest.raises(MaskConfigError, match="unknown field 'password'"):
        MaskSettings(field_masks=(("password", "STRING"),))


def test_an_error_while_masking_dead_letters_the_event_with_only_its_id():
    broken = identity_event({"authorization": "Bearer secret-token"})
    broken["request"]["uri"] = None  # not a string: masking the query raises
    outputs = list(MaskEvent(MaskSettings()).process(SourcedEvent("file:x#line=1", broken)))
    [output] = outputs
    assert isinstance(output, beam.pvalue.TaggedOutput) and output.tag == DEAD_LETTER_TAG
    letter = output.value
    assert (letter["stage"], letter["reason"]) == ("mask", "mask_error")
    assert orjson.loads(letter["payload"]) == {"transaction_id": "t"}
    assert "secret-token" not in repr(letter)
