"""The training-parameter schema (``mlcore.training.parameters``): one description, from which the
command line's options are derived, with TrainConfig's defaults and one message per bad value."""

from __future__ import annotations

import dataclasses

import pytest

from mlcore import cli
from mlcore.training import parameters as schema
from mlcore.training.config import TrainConfig
from mlcore.training.parameters import (
    AUTO_ON_OFF,
    BOOL,
    CHOICE,
    FLOAT,
    PARAMETERS,
    Parameter,
    ParameterError,
    parameter,
    parameters_clean,
    train_config,
)

DROPOUT = Parameter("dropout", FLOAT, minimum=0.0, maximum=0.9, help="share of the head's inputs dropped")


def _parse(*options: str):
    return cli.build_parser().parse_args(["train", "--data", "d", "--out", "o", *options])


def _cli_refusal(capsys, *options: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        _parse(*options)
    assert exit_.value.code == cli.EXIT_ERROR
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_every_parameter_sets_a_train_config_field_and_takes_its_default_from_it():
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for param in PARAMETERS:
        assert param.name in fields, param.name
        config_default = TrainConfig().to_dict()[param.name]
        assert param.config_value(param.default) == config_default, param.name


def test_weights_none_is_random_initialisation_in_the_config():
    assert parameter("weights").default == "imagenet"
    assert train_config(parameters_clean({"weights": "none"})).weights is None
    assert train_config(parameters_clean({"weights": "imagenet"})).weights == "imagenet"


@pytest.mark.parametrize("values, message", [
    ({"head_epochs": 0}, "head_epochs must be between 1 and 1000."),
    ({"head_epochs": "many"}, "head_epochs must be a number."),
    ({"head_epochs": True}, "head_epochs must be between 1 and 1000."),
    ({"time_budget_s": float("nan")}, "time_budget_s must be between 10 and 86400."),
    ({"confidence_threshold": 1.5}, "confidence_threshold must be between 0.0 and 1.0."),
    ({"backbone": "vgg16"}, "backbone must be one of auto, resnet50, efficientnet_lite0."),
    ({"finetune": "maybe"}, "finetune must be one of auto, on, off."),
    ({"serving_int8": "false"}, "serving_int8 must be true or false."),
    ({"learning_rate_hack": 1}, "Unknown training parameter 'learning_rate_hack'."),
])
def test_a_bad_value_is_refused_with_a_sentence_naming_it(values, message):
    with pytest.raises(ParameterError) as error:
        parameters_clean(values)
    assert error.value.message == message and error.value.name == next(iter(values))


def test_values_are_coerced_to_their_type():
    assert parameters_clean({"head_epochs": "40", "time_budget_s": "60", "serving_export": False}) == {
        "head_epochs": 40, "time_budget_s": 60.0, "serving_export": False}
    assert isinstance(parameters_clean({"time_budget_s": 60})["time_budget_s"], float)


def test_train_config_refuses_a_mode_in_the_schemas_words():
    with pytest.raises(ValueError, match="detection must be one of auto, on, off"):
        TrainConfig(detection="sometimes")


def test_the_cli_parses_every_parameter_it_offers():
    options, expected = [], {}
    for param in PARAMETERS:
        if not param.cli:
            continue
        flag = "--" + param.name.replace("_", "-")
        if param.choices == AUTO_ON_OFF:  # a mode: --NAME is on, --no-NAME off
            options.append(f"--no-{flag[2:]}")
            expected[param.name] = "off"
        elif param.kind == BOOL:
            options.append(f"--no-{flag[2:]}")
            expected[param.name] = False
        else:
            value = param.choices[-1] if param.kind == CHOICE else str(param.maximum)
            options += [flag, value]
            expected[param.name] = param.clean(value)
    assert len(expected) >= 15
    assert cli.parameter_values(_parse(*options)) == expected


def test_cli_options_left_out_leave_the_configs_defaults():
    assert cli.parameter_values(_parse()) == {}
    args = _parse("--epochs", "20", "--views", "1", "--time-budget", "60", "--no-finetune", "--finetune-blocks", "3")
    assert cli.parameter_values(args) == {"head_epochs": 20, "augmented_views": 1, "time_budget_s": 60.0,
                                          "finetune": "off", "finetune_blocks": 3}


@pytest.mark.parametrize("options, values", [
    (("--epochs", "0"), {"head_epochs": "0"}),
    (("--input-size", "4"), {"input_size": "4"}),
    (("--time-budget", "soon"), {"time_budget_s": "soon"}),
    (("--backbone", "vgg16"), {"backbone": "vgg16"}),
])
def test_the_cli_refuses_a_bad_value_in_the_schemas_words(capsys, options, values):
    with pytest.raises(ParameterError) as error:
        parameters_clean(values)
    assert _cli_refusal(capsys, *options).endswith(f": {error.value.message}")


def test_a_parameter_added_to_the_schema_is_a_cli_option_without_other_edits(monkeypatch, capsys):
    monkeypatch.setattr(schema, "PARAMETERS", (*PARAMETERS, DROPOUT))
    args = _parse("--dropout", "0.4")
    assert cli.parameter_values(args) == {"dropout": 0.4}
    assert train_config(cli.parameter_values(args)).dropout == 0.4
    assert _cli_refusal(capsys, "--dropout", "2").endswith("dropout must be between 0.0 and 0.9.")
    assert parameters_clean({"dropout": "0.3"}) == {"dropout": 0.3}
