from transforms.identity import IdentitySettings, identify
from transforms.masking import MASK, MaskSettings, mask_event, mask_query


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
