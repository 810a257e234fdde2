"""Identify + mask alone, no Beam: events/s on one core with a realistic configuration (issue 4's yardstick):
10 header masks, 5 query masks, 10 body masks, JSON request and response bodies of ~2 KB.

    .venv/bin/python -m benchmarks.bench_mask --events 20000
"""
from __future__ import annotations

import argparse
import random

import orjson

from benchmarks.bench_decode import best_of
from devtools.sample_traffic import _jwt
from transforms.stages.identity import IdentitySettings, identify
from transforms.stages.masking import MaskSettings, mask_event

HEADER_MASKS = tuple(f"X-Internal-{n}" for n in range(8)) + ("X-Session-Id", "X-Upstream-Token")
QUERY_MASKS = ("session", "sig", "otp", "pin", "auth")
BODY_MASKS = ("password", "ssn", "secret", "cvv", "iban", "refresh_token", "dob", "card.number",
              "customer.email", "items.serial")


def body(rng: random.Random, size: int = 2048, secrets_in_every_item: bool = False) -> dict:
    """A nested JSON order body of about ``size`` bytes. Its maskable fields: the customer's email and
    password, the card number and cvv; with ``secrets_in_every_item`` also a serial and a secret in each of
    its ~20 line items (the worst case: ~45 masked values per body)."""
    document = {"customer": {"id": rng.randint(1, 10**6), "email": "ann@example.com", "password": "hunter2",
                             "address": {"street": "1 Main St", "city": "Springfield", "zip": "12345"}},
                "card": {"number": "4111111111111111", "cvv": "123", "expiry": "12/29"},
                "items": []}
    while len(orjson.dumps(document)) < size:
        position = len(document["items"])
        item = {"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": rng.randint(1, 5),
                "price": round(rng.uniform(1, 500), 2), "tags": ["a", "b"], "meta": {"warehouse": "w1"}}
        if secrets_in_every_item:
            item["serial"] = f"SN{position:06d}"
            item["meta"]["secret"] = "x"
        document["items"].append(item)
    return document


def events(count: int, secrets_in_every_item: bool = False, clients: int | None = None) -> list[dict]:
    """``count`` events; each has its own JWT, or, with ``clients``, one of that many clients' tokens."""
    rng = random.Random(4)
    out = []
    for index in range(count):
        request_headers = {f"x-header-{n}": f"value-{n}" for n in range(8)}
        token = _jwt("u", index if clients is None else index % clients)
        request_headers.update({"content-type": "application/json", "authorization": f"Bearer {token}",
                                "X-Internal-3": "t", "x-session-id": "s", "user-agent": "curl/8.5.0",
                                "accept": "application/json", "host": "api.acme.io"})
        out.append({
            "transaction_id": f"t-{index}",
            "request": {"time": "2026-11-25T09:46:40.123Z", "verb": "POST", "headers": request_headers,
                        "uri": f"https://api.acme.io/v1/orders?page=2&session=abc&api_key=k{index}&sort=asc",
                        "ip_address": "203.0.113.9", "body": body(rng, secrets_in_every_item=secrets_in_every_item)},
            "response": {"time": "2026-11-25T09:46:40.223Z", "status": 201,
                         "headers": {"content-type": "application/json", "set-cookie": "s=1",
                                     "x-upstream-token": "u", "x-request-id": "r", "content-length": "2048"},
                         "body": body(rng, secrets_in_every_item=secrets_in_every_item)},
            "direction": "Incoming", "weight": 1,
            "metadata": {"gateway": "kong", "upstream_uri": "/v1/orders?page=2&session=abc", "route_name": "r"},
        })
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    identity = IdentitySettings(company_id_header="X-Org-Id")
    masks = MaskSettings(request_header_masks=HEADER_MASKS, response_header_masks=HEADER_MASKS,
                         request_query_masks=QUERY_MASKS, request_body_masks=BODY_MASKS,
                         response_body_masks=BODY_MASKS)
    for label, worst_case, clients in (("4 masked fields per body", False, None),
                                       ("~45 masked fields per body", True, None),
                                       ("4 masked fields per body, tokens of 100 clients", False, 100)):
        sample = events(args.events, worst_case, clients)
        mean_body = sum(len(orjson.dumps(e["request"]["body"])) for e in sample) / len(sample)

        def identify_only(sample=sample):
            for event in sample:
                identify(event, identity)

        def identify_and_mask(sample=sample):
            for event in sample:
                mask_event(identify(event, identity), masks)

        print(f"{args.events} events, JSON bodies of {mean_body:,.0f} bytes per side, {label}, best of {args.runs}:")
        for name, work in (("identify", identify_only), ("identify + mask", identify_and_mask)):
            rate = args.events / best_of(args.runs, work)
            print(f"  {name:<18} {rate:>10,.0f} events/s per core")


if __name__ == "__main__":
    main()
