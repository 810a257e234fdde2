"""The Cython-compiled modules (setup.py) behave exactly as their Python source, and are current.

Compiled code is the same ``.py`` file translated to C, with C types from a ``.pxd`` beside it; these tests
catch what could still differ (C integer types, exact-type checks, a stale ``.so`` left by an edit).
"""
import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.stages import masking

ROOT = Path(__file__).resolve().parent.parent
COMPILED_MODULES = tuple(
    node.value for node in ast.walk(ast.parse((ROOT / "setup.py").read_text()))
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("transforms/")
)
IS_COMPILED = masking.__file__.endswith(".so")
needs_compiled = pytest.mark.skipif(not IS_COMPILED, reason="installed without compiled modules "
                                    "(GATEWAYSTREAM_PURE_PYTHON=1 or no C compiler)")


def compiled_file(source: Path) -> Path | None:
    return next(source.parent.glob(f"{source.stem}.cpython-*.so"), None)


def test_every_listed_module_is_compiled_when_a_compiler_is_there():
    assert len(COMPILED_MODULES) >= 10 and all((ROOT / module).exists() for module in COMPILED_MODULES)
    if os.environ.get("GATEWAYSTREAM_PURE_PYTHON") or not shutil.which("cc"):
        pytest.skip("pure-Python install")
    missing = [module for module in COMPILED_MODULES if compiled_file(ROOT / module) is None]
    assert missing == [], "run `.venv/bin/python setup.py build_ext --inplace` (./run_tests.sh does)"


def test_the_generated_c_stays_out_of_the_source_tree():
    """Cython writes its C under build/cython/ (setup.py): ~10 MB of generated code beside the sources hid them."""
    assert sorted(str(path.relative_to(ROOT)) for path in (ROOT / "transforms").rglob("*.c")) == []


def test_no_compiled_module_is_older_than_its_source():
    """Python imports a ``.so`` before the ``.py`` beside it: a stale one would run yesterday's code."""
    stale = []
    for module in COMPILED_MODULES:
        source = ROOT / module
        binary = compiled_file(source)
        newest_source = max(path.stat().st_mtime for path in (source, source.with_suffix(".pxd")) if path.exists())
        if binary is not None and binary.stat().st_mtime < newest_source:
            stale.append(module)
    assert stale == [], "rebuild: `.venv/bin/python setup.py build_ext --inplace`"


def source_module(name: str):
    """The module ``name`` run from its ``.py`` source (its imports stay compiled)."""
    path = ROOT / (name.replace(".", "/") + ".py")
    spec = importlib.util.spec_from_file_location(f"{name}__source", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


MASKED_NAMES = ("password", "ssn", "secret", "card", "number", "email")
BODY_MASKS = ("password", "SSN", "secret", "card.number", "customer.email", "items.serial", "a.b.c")
NAMES = st.sampled_from(MASKED_NAMES + ("customer", "items", "serial", "a", "b", "c", "id", "Ünïcode", "x"))


@st.composite
def any_case_names(draw):
    return "".join(char.upper() if draw(st.booleans()) else char for char in draw(NAMES))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
JSON = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(any_case_names(), children, max_size=6)), max_leaves=40)
QUERY = st.lists(st.tuples(st.one_of(any_case_names(), st.sampled_from(("api%5Fkey", "to+ken", "", "a=b"))),
                           st.sampled_from(("", "=", "=v", "=x=y", "=S3CR3T"))), max_size=6)


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(request_body=JSON, response_body=JSON, query=QUERY, separators=st.lists(st.sampled_from("&;"), min_size=6),
       fragment=st.sampled_from(("", "#frag", "#a=b&password=x")), limit=st.sampled_from((0, 40, 100_000)))
def test_masking_compiled_equals_its_source(request_body, response_body, query, separators, fragment, limit):
    source = source_module("transforms.stages.masking")
    query_text = "".join(f"{separator}{name}{value}"
                         for separator, (name, value) in zip(separators, query, strict=False))
    uri = f"https://a.io/p?{query_text}{fragment}"
    event = {"transaction_id": "t",
             "request": {"time": "2026-11-26T10:00:00.000Z", "verb": "POST", "uri": uri,
                         "headers": {"Authorization": "Bearer x", "X-Session": "s", "Accept": "*/*"},
                         "body": request_body},
             "response": {"time": "2026-11-26T10:00:00.010Z", "status": 200, "headers": {"Set-Cookie": "c"},
                          "body": response_body},
             "metadata": {"upstream_uri": f"/p?{query_text}"}}
    outputs = []
    for module in (masking, source):
        mask_settings = module.MaskSettings(request_header_masks=("x-session",), request_query_masks=MASKED_NAMES,
                                            request_body_masks=BODY_MASKS, response_body_masks=BODY_MASKS,
                                            request_max_body_size_limit=limit)
        outputs.append(orjson.dumps(module.mask_event(event, mask_settings)))
    assert outputs[0] == outputs[1]


PURE_PYTHON_IMPORTS = """
import importlib.machinery, importlib.util, sys

class SourceOnly(importlib.machinery.PathFinder):
    '''Imports transforms.* from the .py files even where a compiled .so sits beside them.'''
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if name.startswith("transforms.") and spec is not None and spec.origin.endswith(".so"):
            source = spec.origin[:spec.origin.index(".cpython-")] + ".py"
            return importlib.util.spec_from_file_location(name, source)
        return spec

sys.meta_path.insert(0, SourceOnly)
"""

DECODE_IDENTIFY_MASK_ALL_SAMPLES = """
import sys, orjson
from benchmarks.bench_mask import BODY_MASKS, HEADER_MASKS, QUERY_MASKS, events
from devtools.sample_traffic import sample_files
from transforms.stages import masking
from transforms.stages.decode import decode_record
from transforms.stages.identity import IdentitySettings, identify
from transforms.stages.masking import MaskSettings, mask_event
from transforms.model.records import RawRecord

identity = IdentitySettings(company_id_header="X-Org-Id", api_version="v1")
masks = MaskSettings(request_header_masks=HEADER_MASKS, response_header_masks=HEADER_MASKS,
                     request_query_masks=QUERY_MASKS, request_body_masks=BODY_MASKS, response_body_masks=BODY_MASKS)
out = [masking.__file__.rsplit(".", 1)[1]]
for name, lines in sorted(sample_files().items()):
    for number, line in enumerate(lines):
        for data in (line, line[:len(line) // 2], line.replace(b'"', b"'", 1)):
            result = decode_record(RawRecord(data, f"{name}#{number}"))
            out.append([[item.source, mask_event(identify(item.event, identity), masks)] for item in result.events])
            out.append([{k: repr(v) for k, v in letter.items() if k != "first_seen"} for letter in result.dead_letters])
for worst_case in (False, True):
    out.extend(mask_event(identify(event, identity), masks) for event in events(30, worst_case))
sys.stdout.buffer.write(orjson.dumps(out))
"""


@needs_compiled
def test_decode_identify_and_mask_of_all_sample_traffic_match_between_compiled_and_source():
    """Every sample record of every format, cut in half and with a quote swapped (dead letters), through
    decode → identify → mask: the compiled modules and their source give byte-identical output."""
    outputs = []
    for prelude in ("", PURE_PYTHON_IMPORTS):
        run = subprocess.run([sys.executable, "-c", prelude + DECODE_IDENTIFY_MASK_ALL_SAMPLES], cwd=ROOT,
                             capture_output=True)
        assert run.returncode == 0, run.stderr.decode()[-3000:]
        outputs.append(orjson.loads(run.stdout))
    compiled, source = outputs
    assert (compiled[0], source[0]) == ("so", "py")
    assert sum(len(part) for part in compiled[1:]) > 1000
    assert compiled[1:] == source[1:]


KEYS = st.sampled_from(("a", "b", "A", 'q"', "s\\", "é", "\u2028", ":", "{", "[x]"))


@st.composite
def json_texts(draw, depth=0):
    """JSON texts that may repeat a key, escape characters two ways, nest deep and hold brackets in strings."""
    def string(text):
        escaped = orjson.dumps(text).decode()
        return escaped.replace('"', "\\u0022").replace("\\\\u0022", '\\"', 1)[6:-6].join('""') \
            if draw(st.booleans()) and '"' in text else escaped

    kind = draw(st.sampled_from(("scalar", "array", "object") if depth < 70 else ("scalar",)))
    if kind == "scalar":
        return draw(st.sampled_from(("1", "-0.5e3", "true", "null", '"{[:"', '"\\\\"', '"\\""')))
    space = draw(st.sampled_from(("", " ", "\n  ")))
    if kind == "array":
        items = draw(st.lists(json_texts(depth + 1), max_size=3))
        return "[" + f",{space}".join(items) + "]"
    members = draw(st.lists(st.tuples(KEYS, json_texts(depth + 1)), max_size=3))
    return "{" + f",{space}".join(f"{string(key)}:{space}{value}" for key, value in members) + "}"


@needs_compiled
@settings(max_examples=500, deadline=None)
@given(text=json_texts(), max_depth=st.sampled_from((1, 2, 3, 64)))
def test_strict_json_compiled_equals_its_source(text, max_depth):
    """The compiled structure scan (depth and duplicate keys in one C pass) and the source's counting rules
    accept and reject the same texts with the same reasons."""
    from transforms.model.errors import DecodeError
    from transforms.stages import strict_json

    source = source_module("transforms.stages.strict_json")
    outcomes = []
    for module in (strict_json, source):
        try:
            outcomes.append(("value", module.loads(text.encode(), max_depth)))
        except DecodeError as exc:
            outcomes.append((exc.reason, exc.detail))
    assert outcomes[0] == outcomes[1]


@st.composite
def near_canonical_times(draw):
    """Canonical times with a character or two swapped for digits, separators, non-ASCII digits or nothing."""
    millis = draw(st.integers(900_000_000_000, 4_200_000_000_000))
    seconds, milli = divmod(millis, 1000)
    text = list(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{milli:03d}Z")
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(text) - 1))
        text[position] = draw(st.sampled_from(("0", "9", "3", "-", ":", "T", ".", "Z", "٣", "", "x")))
    text = "".join(text)
    return draw(st.sampled_from((text, text[:23], text[:22], text[:20], text[:19], text[:19] + "Z", text[:17],
                                 text[:16], text[:16] + "Z", text[:15] + "Z")))


@needs_compiled
@settings(max_examples=1000, deadline=None)
@given(text=near_canonical_times())
def test_time_parsing_compiled_equals_its_source(text):
    """The digit-by-digit reading of canonical times (C integers when compiled) gives the source's answers."""
    from transforms.model import event

    source = source_module("transforms.model.event")
    outcomes = []
    for module in (event, source):
        try:
            outcomes.append((module.parse_iso_ms(text), module.canonical_time(text)))
        except module.InvalidTime as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]


@needs_compiled
@settings(max_examples=2000, deadline=None)
@given(millis=st.one_of(
    st.integers(946_684_800_000, 4_102_444_799_999),
    st.sampled_from((946_684_800_000, 951_782_399_999, 951_782_400_000, 951_868_799_999, 4_102_444_799_999)),
))
def test_time_formatting_compiled_equals_the_calendar(millis):
    """Compiled, times are written digit by digit from a civil-from-days computation, not by the source's cached
    ``time.gmtime``; both must give the calendar's text over the whole [2000, 2100) range (leap days included)."""
    from transforms.model import event

    source = source_module("transforms.model.event")
    seconds, milli = divmod(millis, 1000)
    expected = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{milli:03d}Z"
    assert event.format_epoch_ms(millis) == source.format_epoch_ms(millis) == expected


@needs_compiled
@settings(max_examples=500, deadline=None)
@given(raw=st.binary(max_size=300), index=st.integers(0, 10**6))
def test_transaction_ids_compiled_equal_their_source(raw, index):
    """Compiled, the UUID text is written from the SHA-1 digest's bytes; the source formats its hex digest."""
    from transforms.model import event

    source = source_module("transforms.model.event")
    assert event.TransactionIds(raw).for_index(index) == source.TransactionIds(raw).for_index(index)
