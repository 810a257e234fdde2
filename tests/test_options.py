import re

import pytest

from pipeline.options import build_parser, parse_options
from tests.conftest import ROOT, run_cli

SAMPLES = str(ROOT / "samples" / "*.jsonl")

BASE = ["--input=samples/*.jsonl", "--dead_letter=/tmp/dl", "--output=/tmp/out"]


def test_help_lists_every_option_with_its_default():
    result = run_cli("--help")
    assert result.returncode == 0
    text = re.sub(r"\s+", " ", result.stdout)
    options = [a for a in build_parser()._actions if a.dest != "help"]
    assert len(options) >= 20
    for action in options:
        assert f"--{action.dest}" in text, action.dest
    assert "(default: 200)" in text and "(default: 2.0)" in text and "(default: X-Consumer- Custom-Id)" in text


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--batch_size=0"], "--batch_size"),
        (["--batch_size=lots"], "--batch_size"),
        (["--max_batch_delay_secs=0"], "--max_batch_delay_secs"),
        (["--input_format=xml"], "--input_format"),
        (["--subscription=projects/p/subscriptions/s"], "--input, --subscription"),
        (["--subscription=not-a-path", "--input="], "--subscription"),
        (["--kinesis_stream=logs"], "--kinesis_stream"),
        (["--input=", "--kinesis_stream=no spaces allowed"], "--kinesis_stream"),
        (["--input=", "--kinesis_stream=logs", "--aws_region=us-east-1", "--kinesis_initial_position=OLDEST"],
         "--kinesis_initial_position"),
        (["--input=", "--kinesis_stream=logs", "--aws_region=us-east-1",
          "--kinesis_initial_position=AT_TIMESTAMP:yesterday"], "--kinesis_initial_position"),
        (["--input=nosuchscheme://bucket/*.jsonl"], "--input: cannot list 'nosuchscheme://bucket/*.jsonl': "),
        (["--input=", "--kinesis_stream=logs", "--aws_region=us-east-1",
          "--kinesis_checkpoint_dir=nosuchscheme://bucket/checkpoints"], "--kinesis_checkpoint_dir: cannot list"),
    ],
)
def test_invalid_option_exits_2_with_one_line_naming_it(arguments, named):
    result = run_cli(*BASE, *arguments)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr


def test_delivery_needs_an_application_id(monkeypatch):
    monkeypatch.delenv("GATEWAYSTREAM_APPLICATION_ID", raising=False)
    monkeypatch.delenv("MOESIF_APPLICATION_ID", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        parse_options([f"--input={SAMPLES}", "--dead_letter=d", "--api_endpoint=http://127.0.0.1:1"])
    assert exit_info.value.code == 2
    monkeypatch.setenv("MOESIF_APPLICATION_ID", "from-env")
    args, _ = parse_options([f"--input={SAMPLES}", "--dead_letter=d", "--api_endpoint=http://127.0.0.1:1"])
    assert args.moesif_application_id is None  # read from the environment, never stored in the options


def test_config_file_sets_options_and_the_command_line_wins(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("batch_size: 50\nrequest_header_masks: [X-Secret, X-Other]\napplication_id: abc\n"
                      "dead_letter: /tmp/dl\n")
    args, _ = parse_options(["--config", str(config), f"--input={SAMPLES}", "--batch_size=7"])
    assert args.batch_size == 7
    assert args.request_header_masks == ("X-Secret", "X-Other")
    assert args.moesif_application_id == "abc"


def test_config_file_unknown_key_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text('{"batch_sise": 5}')
    with pytest.raises(SystemExit) as exit_info:
        parse_options(["--config", str(config), *BASE])
    assert exit_info.value.code == 2
    assert "unknown key 'batch_sise'" in capsys.readouterr().err


def test_pubsub_source_turns_streaming_on():
    from apache_beam.options.pipeline_options import StandardOptions

    _, options = parse_options(["--topic=projects/my-project/topics/t", "--dead_letter=d", "--output=o"])
    assert options.view_as(StandardOptions).streaming is True


def test_example_config_sets_every_identity_and_masking_key():
    args, _ = parse_options(["--config", str(ROOT / "config" / "example.yaml"), f"--input={SAMPLES}", "--output=o"])
    assert (args.user_id_header, args.company_id_header, args.api_version) == ("X-Consumer-Custom-Id", "X-Org-Id",
                                                                                "1.0")
    assert args.authorization_company_id_field == ("company_id", "org_id")
    assert args.request_body_masks == ("password", "ssn", "card.number")
    assert args.field_masks == (("userIp", "IPV4"), ("userName", "EMAIL"), ("userAgent", "STRING"))
    assert (args.disable_capture_request_body, args.send_headers) == (False, True)
    assert args.request_max_body_size_limit == 100000


def test_kong_plugin_deprecated_mask_names_and_booleans(tmp_path):
    config = tmp_path / "kong.json"
    config.write_text('{"request_masks": ["pin"], "response_masks": ["otp"], "disable_capture_response_body": true,'
                      ' "send_headers": "no", "dead_letter": "/tmp/dl"}')
    args, _ = parse_options(["--config", str(config), f"--input={SAMPLES}", "--output=/tmp/out"])
    assert (args.request_body_masks, args.response_body_masks) == (("pin",), ("otp",))
    assert (args.disable_capture_response_body, args.send_headers) == (True, False)


@pytest.mark.parametrize(("config_text", "named"), [
    ("field_masks: {userIp: IPV7}\n", "unknown mask type 'IPV7'"),
    ("field_masks: {password: STRING}\n", "unknown field 'password'"),
    ("field_masks: {userName: HASH}\n", "HASH needs a salt"),
    ("send_headers: sometimes\n", "--send_headers"),
    ("request_body_maskz: [a]\n", "unknown key 'request_body_maskz'"),
])
def test_bad_mask_configuration_is_a_one_line_startup_error(tmp_path, config_text, named):
    config = tmp_path / "bad.yaml"
    config.write_text(config_text)
    result = run_cli("--config", str(config), *BASE)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr


def test_hash_salt_from_the_environment_is_never_shown(monkeypatch):
    from pipeline.options import describe, mask_settings

    monkeypatch.setenv("GATEWAYSTREAM_HASH_SALT", "pepper-from-env")
    args, _ = parse_options([*BASE, "--field_masks=user_id=HASH"])
    assert mask_settings(args).hash_salt == "pepper-from-env"
    assert "pepper" not in repr(describe(args)) and "pepper" not in repr(mask_settings(args))
