"""Identity (SPEC §4): configured headers, the format's own fields, JWT claims and the API version."""
import base64

import orjson
import pytest

from transforms.stages.identity import IdentitySettings, claim, identify, jwt_claims


def b64url(value) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


def jwt(claims: dict) -> str:
    return f"{b64url({'alg': 'RS256', 'typ': 'JWT'})}.{b64url(claims)}.c2lnbmF0dXJl"


def event(request_headers=None, response_headers=None, **fields):
    return {"request": {"time": "2026-11-25T09:46:40.000Z", "uri": "https://h/x", "verb": "GET",
                        "headers": request_headers or {}},
            "response": {"time": "2026-11-25T09:46:40.010Z", "status": 200, "headers": response_headers or {}},
            "transaction_id": "t", **fields}


# Claims whose base64url form holds '-' and '_' (a standard-base64 decoder, like Moesif's Kong plugin, drops
# those characters and misses the claims): '>>>' and '???' encode to '-' and '_' runs.
URL_SAFE_CLAIMS = {"sub": "user->>>-42", "company_id": "org-???", "note": ">>>???"}


def test_url_safe_jwt_without_padding_gives_user_and_company():
    token = jwt(URL_SAFE_CLAIMS)
    assert "-" in token.split(".")[1] and "_" in token.split(".")[1] and "=" not in token
    result = identify(event({"Authorization": f"Bearer {token}"}), IdentitySettings(user_id_header=None))
    assert (result["user_id"], result["company_id"]) == ("user->>>-42", "org-???")


@pytest.mark.parametrize("value", [
    "REDACTED",  # Kong >= 2.1 logs this instead of the token
    "Bearer opaque-token-without-dots",
    "Basic dXNlcjpwYXNzd29yZA==",
    "Bearer a.b",  # two segments
    "Bearer a.!!!notbase64.c",
    f"Bearer x.{b64url(['a', 'list'])}.y",  # payload is not an object
    f"Bearer x.{base64.urlsafe_b64encode(b'not json').decode()}.y",
    "Bearer " + "a" * 20_000 + ".b.c",  # too large to be worth decoding
])
def test_anything_that_is_not_a_jwt_is_ignored(value):
    assert jwt_claims(value) is None
    result = identify(event({"authorization": value}), IdentitySettings(user_id_header=None))
    assert "user_id" not in result and "company_id" not in result


def test_precedence_header_then_format_then_jwt():
    token = f"bearer {jwt({'sub': 'from-jwt', 'org_id': 'org-from-jwt'})}"  # "Bearer" in any case, or absent
    settings = IdentitySettings(user_id_header="X-User", company_id_header="X-Org")
    assert identify(event({"x-user": "from-header", "Authorization": token}, user_id="from-format"), settings)[
        "user_id"] == "from-header"
    only_format = identify(event({"Authorization": token}, user_id="from-format"), settings)
    assert (only_format["user_id"], only_format["company_id"]) == ("from-format", "org-from-jwt")
    response_header = identify(event({}, {"X-Org": "org-from-response"}), settings)
    assert response_header["company_id"] == "org-from-response"
    assert identify(event({"Authorization": token.split(" ")[1]}), settings)["user_id"] == "from-jwt"


def test_configured_claims_header_list_and_claim_shapes():
    token = jwt({"uid": 1234, "tenant": {"id": "t-9"}, "Org_Id": "ignored-when-tenant-wins", "flag": True})
    settings = IdentitySettings(user_id_header=None, authorization_header_name=("X-Token", "Authorization"),
                                authorization_user_id_field="uid",
                                authorization_company_id_field=("tenant.id", "org_id"))
    result = identify(event({"Authorization": "Bearer other", "x-token": token}), settings)
    assert (result["user_id"], result["company_id"]) == ("1234", "t-9")
    claims = jwt_claims(token)
    assert claim(claims, "org_id") == "ignored-when-tenant-wins"  # case-insensitive claim names
    assert claim(claims, "flag") is None and claim(claims, "tenant") is None and claim(claims, "missing") is None


def test_api_version_from_format_then_header_then_option():
    settings = IdentitySettings(api_version="1.0")
    assert identify(event(), settings)["request"]["api_version"] == "1.0"
    assert identify(event({"X-API-Version": "2.3"}), settings)["request"]["api_version"] == "2.3"
    own = event({"x-api-version": "2.3"})
    own["request"]["api_version"] = "3.0"  # WSO2 apiVersion, a Moesif event's own
    assert identify(own, settings)["request"]["api_version"] == "3.0"
    assert "api_version" not in identify(event(), IdentitySettings())["request"]


def test_identify_does_not_modify_its_input():
    original = event({"X-Consumer-Custom-Id": "cust-1", "X-Api-Version": "2"})
    snapshot = orjson.dumps(original)
    result = identify(original, IdentitySettings())
    assert result["user_id"] == "cust-1" and result["request"]["api_version"] == "2"
    assert orjson.dumps(original) == snapshot


def test_a_header_in_its_configured_case_wins_else_the_first_non_empty_in_any_case():
    settings = IdentitySettings(user_id_header="X-User", company_id_header="X-Org",
                                authorization_header_name=("Authorization",))
    both_cases = identify(event({"x-user": "lower", "X-User": "exact", "X-ORG": "", "x-org": "org-b"}), settings)
    assert (both_cases["user_id"], both_cases["company_id"]) == ("exact", "org-b")
    empty_exact = event({"Authorization": "", "AUTHORIZATION": f"Bearer {jwt({'sub': 'u-from-upper'})}"})
    assert identify(empty_exact, settings)["user_id"] == "u-from-upper"  # an empty header is no header


def test_one_header_named_for_two_fields_fills_both():
    settings = IdentitySettings(user_id_header="X-Principal", company_id_header="x-principal")
    result = identify(event({"X-PRINCIPAL": "acme"}), settings)
    assert (result["user_id"], result["company_id"]) == ("acme", "acme")


def test_decoded_tokens_are_remembered_within_a_bound():
    """A client's token repeats on every request: its payload is decoded once and remembered without its signature,
    other Authorization values are not remembered, and the memo never grows past its limit."""
    from transforms.stages import identity

    settings = IdentitySettings(company_id_header="X-Org")
    tokens = [f"Bearer {jwt({'sub': f'user-{n}', 'org_id': f'org-{n % 3}'})}" for n in range(3)]
    for _ in range(2):
        for n, token in enumerate(tokens):
            identified = identify(event({"Authorization": token}), settings)
            assert (identified["user_id"], identified["company_id"]) == (f"user-{n}", f"org-{n % 3}")
    identify(event({"Authorization": "Basic dXNlcjpwYXNz"}), settings)  # not a JWT: not remembered
    assert settings.decoded_tokens.known == {token.split(".")[1]: jwt_claims(token) for token in tokens}
    for n in range(identity.CLAIMS_MEMO_LIMIT + 5):
        settings.decoded_tokens.claims(f"Bearer {jwt({'sub': n})}")
    assert len(settings.decoded_tokens.known) <= identity.CLAIMS_MEMO_LIMIT
    assert settings.decoded_tokens.claims(tokens[0]) == {"sub": "user-0", "org_id": "org-0"}
