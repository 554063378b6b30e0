"""Training parameters on the platform are derived from mlcore's schema: the training page's form,
the API's request body and its documentation, the service's check and the start-up check of
STEELQC_TRAINING_DEFAULTS. A bad value gets the same sentence everywhere, the command line's
included, and a parameter added to the schema appears in all of them without other edits."""

from __future__ import annotations

import json

import pytest
from django.core import checks

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.checks import training_defaults_check
from inspections.errors import ApplicationError
from inspections.models import TrainingRun
from inspections.registry.api.serializers import training_parameters_serializer
from inspections.registry.pages.forms import TrainingRunStartForm
from inspections.registry.services.training import training_parameters_clean
from mlcore import cli
from mlcore.training import parameters as schema
from mlcore.training.parameters import BOOL, CHOICE, FLOAT, INT, PARAMETERS, Parameter, ParameterError, parameter
from tests.conftest import tiny_dataset
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

DROPOUT = Parameter("dropout", FLOAT, minimum=0.0, maximum=0.9, help="share of the head's inputs dropped")

BAD_VALUES = [("head_epochs", 0), ("input_size", 4), ("time_budget_s", "soon"), ("confidence_threshold", 1.5)]


def _schema_message(name: str, value) -> str:
    with pytest.raises(ParameterError) as error:
        parameter(name).clean(value)
    return error.value.message


def _a_valid_value(param: Parameter):
    """A value each parameter accepts, other than its default where it can be."""
    if param.kind == CHOICE:
        return next(choice for choice in reversed(param.choices) if choice != param.default)
    if param.kind == BOOL:
        return not param.default
    if param.kind in (INT, FLOAT):
        return param.maximum
    return "x"


@pytest.fixture
def labelled_images(tmp_path, settings):
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 1, 1  # 10 a class split 7/2/1; readiness is tested elsewhere
    tiny_dataset(tmp_path / "data", per_class=10)
    dataset_import_folder(root=tmp_path / "data")


def test_the_training_form_has_a_field_per_parameter_with_its_limits():
    form = TrainingRunStartForm()
    assert list(form.fields) == [param.name for param in PARAMETERS]
    for param in PARAMETERS:
        field = form.fields[param.name]
        assert field.help_text == param.help and not field.required
        if param.kind in (INT, FLOAT):
            attrs = field.widget.attrs
            assert (attrs["min"], attrs["max"]) == (param.minimum, param.maximum), param.name
        if param.kind == CHOICE:
            assert [value for value, _ in field.choices] == list(param.choices)


def test_the_form_starts_at_the_installations_defaults(settings):
    settings.STEELQC_TRAINING_DEFAULTS = {"finetune": "off", "head_epochs": 60, "serving_int8": False}
    form = TrainingRunStartForm()
    assert form.fields["finetune"].initial == "off"
    assert form.fields["head_epochs"].widget.attrs["placeholder"] == 60
    assert form.fields["input_size"].widget.attrs["placeholder"] == parameter("input_size").default
    assert form.fields["serving_int8"].initial == "false"


def test_the_form_sends_only_what_differs_from_the_defaults():
    form = TrainingRunStartForm({"backbone": "auto", "finetune": "off", "head_epochs": "40", "batch_size": "",
                                 "serving_export": "true", "serving_int8": "false"})
    assert form.is_valid(), form.errors
    assert form.training_parameters() == {"finetune": "off", "head_epochs": 40, "serving_int8": False}


def test_the_api_accepts_every_parameter_and_the_run_records_it(labelled_images, no_queue):
    chosen = {param.name: _a_valid_value(param) for param in PARAMETERS}
    response = client_for("ml_admin").post("/api/v1/training-runs/", {"parameters": chosen}, format="json")
    assert response.status_code == 202, response.content
    assert TrainingRun.objects.get().parameters == chosen


@pytest.mark.parametrize("name, value", BAD_VALUES)
def test_a_bad_value_gets_the_same_sentence_from_the_service_api_page_cli_and_check(name, value, settings, capsys):
    message = _schema_message(name, value)

    with pytest.raises(ApplicationError) as error:
        training_parameters_clean({name: value})
    assert (error.value.message, error.value.code) == (message, "invalid_parameter")

    body = assert_error(client_for("ml_admin").post("/api/v1/training-runs/", {"parameters": {name: value}},
                                                    format="json"), 400, "invalid_parameter")
    assert body["message"] == message

    form = TrainingRunStartForm({name: str(value)})
    assert not form.is_valid() and form.errors[name] == [message]

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--data", "d", "--out", "o", f"--{name.replace('_', '-')}",
                                       str(value)])
    assert capsys.readouterr().err.strip().endswith(f": {message}")

    settings.STEELQC_TRAINING_DEFAULTS = {name: value}
    (found,) = training_defaults_check(None)
    assert (found.id, found.msg) == ("inspections.E001", f"STEELQC_TRAINING_DEFAULTS: {message}")


def test_the_start_up_check_passes_the_schemas_own_defaults_and_names_a_bad_backbone_setting(settings):
    settings.STEELQC_TRAINING_DEFAULTS = {param.name: param.default for param in PARAMETERS}
    assert training_defaults_check(None) == []
    settings.STEELQC_BACKBONE = "vgg16"
    (found,) = training_defaults_check(None)
    assert found.level == checks.ERROR and found.msg == (
        f"STEELQC_BACKBONE: {_schema_message('backbone', 'vgg16')}")


def test_the_api_documents_every_parameter_with_its_type_and_limits():
    response = client_for("viewer").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    document = json.loads(response.content)
    components = document["components"]["schemas"]
    request = document["paths"]["/api/v1/training-runs/"]["post"]["requestBody"]["content"]["application/json"]
    body = components[request["schema"]["$ref"].rsplit("/", 1)[1]]
    documented = _resolve(components, body["properties"]["parameters"])["properties"]
    assert list(documented) == [param.name for param in PARAMETERS]
    assert (documented["head_epochs"]["minimum"], documented["head_epochs"]["maximum"]) == (1, 1000)
    assert _resolve(components, documented["backbone"])["enum"] == list(parameter("backbone").choices)
    assert documented["serving_int8"]["type"] == "boolean"


def _resolve(components: dict, schema: dict) -> dict:
    """The component a property refers to (drf-spectacular wraps a reference in allOf to describe it)."""
    reference = (schema.get("allOf") or [schema])[0].get("$ref")
    return components[reference.rsplit("/", 1)[1]] if reference else schema


def test_a_parameter_added_to_the_schema_appears_everywhere_without_other_edits(monkeypatch, settings,
                                                                                labelled_images, no_queue):
    monkeypatch.setattr(schema, "PARAMETERS", (*PARAMETERS, DROPOUT))

    field = TrainingRunStartForm().fields["dropout"]
    assert (field.widget.attrs["min"], field.widget.attrs["max"]) == (0.0, 0.9)
    assert "dropout" in [bound.name for bound in TrainingRunStartForm().more_fields()]

    documented = training_parameters_serializer(schema.PARAMETERS)().fields["dropout"]
    assert (documented.min_value, documented.max_value) == (0.0, 0.9)

    assert cli.parameter_values(cli.build_parser().parse_args(
        ["train", "--data", "d", "--out", "o", "--dropout", "0.4"])) == {"dropout": 0.4}

    settings.STEELQC_TRAINING_DEFAULTS = {"dropout": 0.3}
    assert training_defaults_check(None) == []
    assert training_parameters_clean({})["dropout"] == 0.3
    with pytest.raises(ApplicationError, match="dropout must be between 0.0 and 0.9"):
        training_parameters_clean({"dropout": 2})

    response = client_for("ml_admin").post("/api/v1/training-runs/", {"parameters": {"dropout": 0.5}}, format="json")
    assert response.status_code == 202, response.content
    run = TrainingRun.objects.get()
    assert run.parameters["dropout"] == 0.5
    from inspections.registry.services.training import _train_config

    assert _train_config(run.parameters).dropout == 0.5


def test_without_the_schema_entry_the_same_parameter_is_refused_everywhere(settings):
    settings.STEELQC_TRAINING_DEFAULTS = {"dropout": 0.3}
    (found,) = training_defaults_check(None)
    assert found.msg == "STEELQC_TRAINING_DEFAULTS: Unknown training parameter 'dropout'."
    assert "dropout" not in TrainingRunStartForm().fields
