"""The Dataflow Flex Template's metadata (issue 7): every option, with help text and a regex that accepts the
option's own default, and the committed file is what the generator produces."""
import json
import re

from pipeline.flex_template import NOT_PARAMETERS, metadata
from pipeline.options import build_parser
from tests.conftest import ROOT


def test_committed_metadata_is_the_generated_one():
    committed = json.loads((ROOT / "dataflow" / "metadata.json").read_text())
    regenerate = "run: python -m pipeline.flex_template > dataflow/metadata.json"
    assert committed == json.loads(json.dumps(metadata())), regenerate


def test_every_option_is_a_parameter_with_help_and_a_working_regex():
    parameters = {parameter["name"]: parameter for parameter in metadata()["parameters"]}
    options = {action.dest: action for action in build_parser()._actions if action.dest not in NOT_PARAMETERS}
    assert parameters.keys() == options.keys()
    for name, parameter in parameters.items():
        assert parameter["helpText"].strip(), name
        for regex in parameter.get("regexes", []):
            pattern = re.compile(regex)
            default = options[name].default
            if default not in (None, ()):
                shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
                if name != "field_masks":
                    assert pattern.fullmatch(shown), (name, regex, shown)
    assert re.fullmatch(parameters["subscription"]["regexes"][0], "projects/p/subscriptions/s")
    assert not re.fullmatch(parameters["batch_size"]["regexes"][0], "lots")
    assert re.fullmatch(parameters["field_masks"]["regexes"][0], "userIp=IPV4,user_id=HASH")
    assert re.fullmatch(parameters["send_headers"]["regexes"][0], "false")
    assert re.fullmatch(parameters["input_format"]["regexes"][0], "aws_apigateway")
