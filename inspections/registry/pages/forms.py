"""The registry pages' forms: start a training run, promote a version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django import forms

from inspections.registry.models import OVERRIDE_REASON_MAX_LENGTH, ModelVersionKind
from inspections.registry.services.anomaly_training import ANOMALY_PARAMETERS, anomaly_parameters_defaults
from inspections.registry.services.training import training_parameters_defaults
from mlcore.training import parameters as training_parameters
from mlcore.training.parameters import BOOL, CHOICE, FLOAT, INT, Parameter, ParameterError

# Shown open on the training page; every other parameter is under "More parameters".
PROMINENT_PARAMETERS = ("backbone", "finetune", "head_epochs")


class ParameterField(forms.Field):
    """A typed-in value checked by mlcore's schema, so the page refuses it in the API's words."""

    def __init__(self, parameter: Parameter, **kwargs):
        self.parameter = parameter
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return self.parameter.clean(value.strip() if isinstance(value, str) else value)
        except ParameterError as error:
            raise forms.ValidationError(error.message, code="invalid_parameter") from None


def parameter_fields(parameters: Sequence[Parameter], defaults: Mapping[str, object]) -> dict[str, forms.Field]:
    """A form field per training parameter; each starts at (or shows) the installation's default,
    and one left empty leaves that default."""
    return {param.name: _field(param, defaults.get(param.name, param.default)) for param in parameters}


def _field(param: Parameter, default) -> forms.Field:
    # No label of its own: Django shows the name spaced, and names the field by it in errors.
    common = {"required": False, "label": param.label or None, "help_text": param.help}
    if param.kind == CHOICE:
        return forms.ChoiceField(choices=[(choice, param.choice_labels.get(choice, choice)) for choice in param.choices],
                                 initial=default, **common)
    if param.kind == BOOL:  # a select, not a checkbox: a form posted without it keeps the default
        return forms.TypedChoiceField(choices=[("true", "on"), ("false", "off")], coerce=lambda value: value == "true",
                                      empty_value=None, initial="true" if default else "false", **common)
    if param.kind in (INT, FLOAT):
        widget = forms.NumberInput(attrs={"min": param.minimum, "max": param.maximum, "placeholder": default,
                                          "step": 1 if param.kind == INT else "any"})
    else:
        widget = forms.TextInput(attrs={"placeholder": default})
    return ParameterField(param, widget=widget, **common)


class TrainingRunStartForm(forms.Form):
    """Every training parameter of mlcore's schema; the page narrows ``backbone`` to the ones that can run."""

    def __init__(self, *args, parameters: Sequence[Parameter] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.defaults = training_parameters_defaults()
        self.fields.update(parameter_fields(
            training_parameters.PARAMETERS if parameters is None else parameters, self.defaults))

    def prominent_fields(self) -> list:
        return [self[name] for name in self.fields if name in PROMINENT_PARAMETERS]

    def more_fields(self) -> list:
        return [self[name] for name in self.fields if name not in PROMINENT_PARAMETERS]

    def training_parameters(self) -> dict:
        """For ``training_run_start`` (which checks them again): what the person changed from the
        installation's defaults; the service fills in the rest."""
        return {name: value for name, value in self.cleaned_data.items()
                if value not in (None, "") and value != self.defaults.get(name)}


class AnomalyRunStartForm(forms.Form):
    """Start an anomaly run: its parameters (``ANOMALY_PARAMETERS``), each left empty for its default;
    the service checks them (``anomaly_parameters_clean``)."""

    kind = forms.CharField(widget=forms.HiddenInput, initial=ModelVersionKind.ANOMALY)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.defaults = anomaly_parameters_defaults()
        for name, (kind, help_text) in ANOMALY_PARAMETERS.items():
            field = forms.IntegerField if kind is int else forms.FloatField
            self.fields[name] = field(required=False, help_text=help_text, widget=forms.NumberInput(
                attrs={"placeholder": self.defaults[name], "step": 1 if kind is int else "any"}))

    def training_parameters(self) -> dict:
        return {name: value for name, value in self.cleaned_data.items()
                if name in ANOMALY_PARAMETERS and value is not None and value != self.defaults[name]}


class PromoteForm(forms.Form):
    """Promote a version; one the gate refused (``refused``) also needs the reason for overriding it."""

    repredict = forms.BooleanField(required=False, label="also re-predict the images waiting for review")
    override_reason = forms.CharField(
        required=False, max_length=OVERRIDE_REASON_MAX_LENGTH, label="Why promote it anyway",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded with the promotion and shown on the version page.",
    )

    def __init__(self, *args, refused: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["override_reason"].required = refused

    def reason_for_override(self) -> str | None:
        """For ``model_version_promote``: the reason when the gate refused the version, else None."""
        return self.cleaned_data.get("override_reason") if self.fields["override_reason"].required else None
