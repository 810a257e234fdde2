"""Routes (issue 25): user templates, the gateway's own template, inference from the path, the cardinality bound."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from transforms.stages.routes import (
    MAX_TRACKED_PREFIXES,
    Router,
    RouteSettings,
    RouteTemplateError,
    add_route,
    parse_template,
    route_path,
)


def event(uri, **metadata):
    return {"request": {"uri": uri, "verb": "GET"}, "metadata": metadata}


def route(uri, settings=RouteSettings(), **metadata):
    return Router(settings).route(event(uri, **metadata))


@pytest.mark.parametrize(("uri", "expected"), [
    ("https://api.acme.io/v1/orders/10268", "/v1/orders/{id}"),
    ("https://api.acme.io:8443/v1/orders/10268?expand=items#top", "/v1/orders/{id}"),  # no query, no fragment
    ("/v1/orders/6f1c2a3e-9b7d-4c1e-8f00-0000000000aa/items", "/v1/orders/{id}/items"),  # UUID
    ("/v1/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/v1/events/{id}"),  # ULID
    ("/v1/blobs/5f3a9c2b1e7d", "/v1/blobs/{id}"),  # hex with digits
    ("/v1/commits/a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "/v1/commits/{id}"),
    ("/v1/sessions/dGhpcy1pcy1hLXRva2VuLTEyMw", "/v1/sessions/{id}"),  # base64url token
    ("/v1/users/alice%40example.com/orders", "/v1/users/{id}/orders"),  # email, percent-encoded
    ("/v1/users/bob@example.org", "/v1/users/{id}"),
    ("/v1/reports/2026-11-25", "/v1/reports/{id}"),  # date
    ("/v1/reports/2026-11-25T10:00:00Z/rows", "/v1/reports/{id}/rows"),
    ("/v1/users/me", "/v1/users/me"),  # a name stays a name
    ("/v1/catalog/search", "/v1/catalog/search"),
    ("/v1/deadbeef-feed", "/v1/deadbeef-feed"),  # hex letters and a dash, no digit: a name
    ("/v1/customer-preferences-settings", "/v1/customer-preferences-settings"),  # long, no digit: a name
    ("/pizzashack/1.0.0/menu/{orderId}", "/pizzashack/1.0.0/menu/{orderId}"),  # WSO2 logs the template itself
])
def test_inference(uri, expected):
    assert route(uri) == expected


@pytest.mark.parametrize(("uri", "expected"), [
    ("", "/"),
    ("*", "*"),
    ("https://api.acme.io", "/"),
    ("http://api.acme.io?x=1", "/"),
    ("orders/42", "/orders/{id}"),
    ("/a/%C3%28/b", "/a/{id}/b"),  # percent-encoding of invalid UTF-8: an id, not a crash
    ("/a/%ZZ", "/a/%ZZ"),  # not percent-encoding at all: kept as sent
    ("//double//slash", "//double//slash"),
    ("/" + "x" * 500, "/{id}"),
])
def test_a_path_that_is_not_a_path_still_gets_a_route(uri, expected):
    assert route(uri) == expected


def test_user_templates_come_first():
    settings = RouteSettings(templates=("/v1/users/{user}/cards/{card}", "/v1/orders/{order}"))
    assert route("/v1/users/alice/cards/c-1", settings) == "/v1/users/{user}/cards/{card}"
    assert route("/v1/orders/42", settings, gateway="aws_apigateway", route_template="/orders/{id}") == \
        "/v1/orders/{order}"
    assert route("/v1/users/alice/cards", settings) == "/v1/users/alice/cards"  # no match: inferred
    assert route("/v1/users//cards/c-1", settings) == "/v1/users//cards/c-1"  # an empty segment is no value


def test_the_gateways_template_beats_inference():
    assert route("https://x.execute-api.us-east-1.amazonaws.com/prod/pets/42", gateway="aws_apigateway",
                 route_template="/pets/{petId}") == "/pets/{petId}"
    assert route("/v1/orders/42", sdk="moesifapi-python", route="/orders/{order_id}") == "/orders/{order_id}"
    # Kong's route name is a name, not a template: the path decides.
    assert route("/v1/orders/42", gateway="kong", route_name="orders-get") == "/v1/orders/{id}"


def test_cardinality_bound_per_prefix():
    router = Router(RouteSettings(max_routes_per_prefix=3))
    routes = [router.route(event(f"/v1/users/{name}/profile"))
              for name in ("alice", "bob", "carol", "dave", "erin", "alice")]
    assert routes == ["/v1/users/alice/profile", "/v1/users/bob/profile", "/v1/users/carol/profile",
                      "/v1/users/{id}/profile", "/v1/users/{id}/profile", "/v1/users/alice/profile"]
    assert router.route(event("/v1/orders")) == "/v1/orders"  # another prefix has its own count


def test_routes_stay_bounded_under_random_names():
    router = Router(RouteSettings(max_routes_per_prefix=20))
    routes = {router.route(event(f"/v1/{word}/{word}x/{word}y")) for word in
              (f"name{chr(97 + n % 26)}{chr(97 + n // 26 % 26)}{chr(97 + n // 676)}" for n in range(5000))}
    # Each of the 3 varying levels admits at most 20 literal segments; everything else shares {id} routes.
    assert len(routes) == 3 * 20 + 1
    assert "/v1/{id}/{id}/{id}" in routes


def test_tracked_prefixes_are_bounded():
    router = Router(RouteSettings(max_routes_per_prefix=MAX_TRACKED_PREFIXES * 2))
    for n in range(MAX_TRACKED_PREFIXES + 50):
        router.route(event(f"/t{chr(97 + n % 26)}{chr(97 + n // 26 % 26)}{chr(97 + n // 676 % 26)}/leaf"))
    assert len(router._seen) <= MAX_TRACKED_PREFIXES


@pytest.mark.parametrize(("template", "problem"), [
    ("v1/users", "does not start with '/'"),
    ("/v1/{user", "is not a whole {name}"),
    ("/v1/user{id}", "is not a whole {name}"),
    ("/v1/{a}/{a}", "names {a} twice"),
    ("/v1/users?x={y}", "has a query or fragment"),
    ("/v1/{1x}", "is not a whole {name}"),
])
def test_a_bad_template_is_refused(template, problem):
    with pytest.raises(RouteTemplateError, match=problem.replace("{", r"\{").replace("?", r"\?")):
        parse_template(template)


def test_a_bad_template_stops_the_start_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline", "--input=samples/kong-3.x.jsonl",
                             f"--output={tmp_path}/o", f"--dead_letter={tmp_path}/d",
                             "--route_templates=/v1/orders/{id},/v1/{user"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m pipeline: error: argument --route_templates: route template '/v1/{user': segment '{user' is "
        "not a whole {name}"]


def test_route_path():
    assert route_path("https://h/a/b?c#d") == "/a/b"
    assert route_path("/a?b") == "/a"


def test_add_route_sets_metadata_route():
    router = Router()
    with_metadata = event("/v1/orders/7", gateway="kong")
    add_route(with_metadata, router)
    assert with_metadata["metadata"] == {"gateway": "kong", "route": "/v1/orders/{id}"}
    without = {"request": {"uri": "/v1/orders/8"}}
    add_route(without, router)
    assert without["metadata"] == {"route": "/v1/orders/{id}"}
