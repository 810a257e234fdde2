"""The Dataflow Flex Template's ``metadata.json``, generated from the options (so it cannot drift from them).

    .venv/bin/python -m pipeline.flex_template > dataflow/metadata.json

Every option becomes a parameter with its help text (and default), and a regex that Dataflow checks before
it launches anything: numbers, booleans, choices, Pub/Sub paths, URLs and lists each have their shape.
"""
from __future__ import annotations

import argparse
import json
import sys
from types import MappingProxyType
from typing import Any

from pipeline.options import as_boolean, as_field_masks, as_name_list, build_parser

# Options that make no sense as template parameters: the template *is* the configuration.
NOT_PARAMETERS = frozenset({"help", "config"})

_SHAPES = MappingProxyType({
    "subscription": r"^projects/[^/]+/subscriptions/[^/]+$",
    "topic": r"^projects/[^/]+/topics/[^/]+$",
    "api_endpoint": r"^https?://[^\s]+$",
    "input": r"^[^\s]+$",
    "output": r"^[^\s]+$",
    "dead_letter": r"^[^\s]+$",
    "archive": r"^[^\s]+$",
    "pubsub_expansion_service": r"^[^\s:]+:[0-9]+$",
    "kinesis_stream": r"^([A-Za-z0-9_.-]{1,128}|arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/"
                      r"[A-Za-z0-9_.-]{1,128})$",
    "aws_region": r"^[a-z]{2}(-[a-z]+)+-[0-9]+$",
    "kinesis_endpoint_url": r"^https?://[^\s]+$",
    "kinesis_initial_position": r"^(LATEST|TRIM_HORIZON|AT_TIMESTAMP:[0-9T:.+-]+Z?)$",
    "kinesis_checkpoint_dir": r"^[^\s]+$",
    "user_id_header": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]*$",  # an HTTP token (RFC 9110), or empty to disable
    "company_id_header": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]*$",
    "api_version_header": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]*$",
    "authorization_user_id_field": r"^[^\s]+$",
    "api_version": r"^[^\s]+$",
    "moesif_application_id": r"^[^\s]+$",
})
_TYPE_SHAPES = MappingProxyType({
    int: r"^[0-9]+$",
    float: r"^[0-9]+(\.[0-9]+)?$",
    as_boolean: r"^(true|false|True|False|yes|no|1|0|on|off)$",
    as_name_list: r"^[^,\s][^,]*(,[^,\s][^,]*)*$",
    as_field_masks: r"^[A-Za-z_.]+=(IPV4|IPV6|EMAIL|STRING|HASH)(,[A-Za-z_.]+=(IPV4|IPV6|EMAIL|STRING|HASH))*$",
})
_SECRETS = ("moesif_application_id", "hash_salt")


def parameter(action: argparse.Action) -> dict[str, Any]:
    help_text = action.help or ""
    default = action.default
    if default not in (None, "", ()) and default is not argparse.SUPPRESS:
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{help_text} (default: {shown})"
    if action.dest in _SECRETS:
        help_text += ". A template parameter is visible in the job's metadata: prefer the environment variable"
    entry: dict[str, Any] = {
        "name": action.dest,
        "label": action.dest.replace("_", " ").capitalize(),
        "helpText": help_text,
        "isOptional": True,  # the pipeline checks combinations itself and fails with one line naming the option
    }
    if action.choices:
        entry["regexes"] = [f"^({'|'.join(action.choices)})$"]
    elif action.dest in _SHAPES:
        entry["regexes"] = [_SHAPES[action.dest]]
    elif action.type in _TYPE_SHAPES:
        entry["regexes"] = [_TYPE_SHAPES[action.type]]
    return entry


def metadata() -> dict[str, Any]:
    parser = build_parser()
    return {
        "name": "gatewaystream",
        "description": parser.description,
        "parameters": [parameter(action) for action in parser._actions if action.dest not in NOT_PARAMETERS],
    }


def main() -> int:
    json.dump(metadata(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
