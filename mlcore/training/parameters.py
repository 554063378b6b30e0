"""The training parameters a person may set: the one description of their names, types, limits,
defaults and help.

Everything that accepts training parameters is derived from ``PARAMETERS``: the command line's
options (``mlcore.cli``), and on the platform the API's documented request body, the training
page's form, the service that checks a run's parameters and the start-up check of
``STEELQC_TRAINING_DEFAULTS``. A parameter added here appears in all of them; its default is the
field of ``TrainConfig`` of the same name, so there is one default too.

``parameters_clean`` checks and coerces a mapping with one message per bad parameter, the same
words wherever the value came from. The rest of ``TrainConfig`` (weight files, caches, learning
rates, augmentation) is not for a run to choose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlcore.artefact import BACKBONE_CHOICES
from mlcore.training.config import TrainConfig

INT, FLOAT, BOOL, CHOICE, STR = "int", "float", "bool", "choice", "str"
AUTO_ON_OFF = ("auto", "on", "off")


class ParameterError(ValueError):
    """A training parameter that cannot be used: ``name``, a sentence for people and ``details``."""

    def __init__(self, name: str, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.name = name
        self.message = message
        self.details = details or {}


@dataclass(frozen=True)
class Parameter:
    name: str                    # the field of TrainConfig it sets
    kind: str                    # INT, FLOAT, BOOL, CHOICE or STR
    help: str
    minimum: float | None = None  # INT and FLOAT: inclusive limits
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # CHOICE
    choice_labels: Mapping[str, str] = field(default_factory=dict)  # how a form shows a choice
    label: str = ""              # for people, where the name, spaced, would not do
    # False: the command line offers it another way (``--serving`` sets both serving copies).
    cli: bool = True
    cli_aliases: tuple[str, ...] = ()  # older spellings the command line keeps accepting
    # A chosen value that TrainConfig spells differently (weights "none" is None there).
    config_values: Mapping[str, object] = field(default_factory=dict)

    @property
    def default(self):
        """TrainConfig's default, in the parameter's own spelling."""
        value = _config_default(self.name)
        return next((chosen for chosen, config in self.config_values.items() if config == value), value)

    def clean(self, value):
        """The value, coerced to the parameter's type; ``ParameterError`` when it is not usable."""
        if self.kind in (INT, FLOAT):
            return self._number(value)
        if self.kind == BOOL:
            if not isinstance(value, bool):
                raise ParameterError(self.name, f"{self.name} must be true or false.")
            return value
        if self.kind == CHOICE:
            if not isinstance(value, str) or value not in self.choices:
                raise ParameterError(self.name, f"{self.name} must be one of {', '.join(self.choices)}.",
                                     details={self.name: value} if isinstance(value, str) else {})
            return value
        if not isinstance(value, str):
            raise ParameterError(self.name, f"{self.name} must be text.")
        return value

    def _number(self, value):
        try:
            number = (int if self.kind == INT else float)(value)
        except (TypeError, ValueError, OverflowError):
            raise ParameterError(self.name, f"{self.name} must be a number.") from None
        # A bool is an int to Python, never a count to a person; NaN fails the comparison.
        if isinstance(value, bool) or not self.minimum <= number <= self.maximum:
            raise ParameterError(self.name, f"{self.name} must be between {self.minimum} and {self.maximum}.")
        return number

    def config_value(self, value):
        return self.config_values.get(value, value) if isinstance(value, str) else value


def _config_default(name: str):
    spec = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    return spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("backbone", CHOICE, choices=BACKBONE_CHOICES,
              help="the network the classifier is built on; auto: resnet50 if its ImageNet weights file is present, "
                   "else efficientnet_lite0"),
    Parameter("weights", CHOICE, choices=("imagenet", "none"), config_values={"none": None},
              help="pretrained ImageNet weights, or none: random initialisation, for tests"),
    Parameter("finetune", CHOICE, choices=AUTO_ON_OFF, label="Fine-tuning",
              choice_labels={"auto": "auto (only if it helps)"},
              help="phase 2, fine-tuning the top backbone blocks; auto: only if phase 1 misses "
                   f"{_config_default('auto_finetune_below'):.1%} validation accuracy"),
    Parameter("detection", CHOICE, choices=AUTO_ON_OFF,
              help="train the defect-box detector; auto: when at least detection_min_images training "
                   "images carry boxes"),
    Parameter("head_epochs", INT, minimum=1, maximum=1000, label="Head epochs", cli_aliases=("--epochs",),
              help="most epochs of phase 1, the classifier head; early stopping may end it sooner"),
    Parameter("head_patience", INT, minimum=1, maximum=1000,
              help="phase 1 stops after this many epochs without a better validation loss"),
    Parameter("finetune_epochs", INT, minimum=0, maximum=100, help="epochs of phase 2"),
    Parameter("finetune_blocks", INT, minimum=1, maximum=20, help="top backbone blocks phase 2 trains"),
    Parameter("augmented_views", INT, minimum=0, maximum=16, cli_aliases=("--views",),
              help="augmented views of each training image, besides the clean one"),
    Parameter("batch_size", INT, minimum=1, maximum=256, help="images per training step"),
    Parameter("input_size", INT, minimum=32, maximum=512, label="Input size (px)",
              help="backbone input size in pixels"),
    Parameter("seed", INT, minimum=0, maximum=2**31 - 1,
              help="training randomness: augmentation, initialisation, order"),
    Parameter("time_budget_s", FLOAT, minimum=10, maximum=24 * 3600, label="Time budget (s)",
              cli_aliases=("--time-budget",), help="seconds; phase 2 starts no epoch past it"),
    Parameter("confidence_threshold", FLOAT, minimum=0.0, maximum=1.0,
              help="a prediction less confident than this goes to review as low_confidence"),
    Parameter("detection_min_images", INT, minimum=1, maximum=1_000_000,
              help="boxed training images detection 'auto' needs"),
    Parameter("detection_epochs", INT, minimum=1, maximum=500,
              help="most epochs of the detector (the head and the backbone's top blocks); the time budget may end "
                   "it sooner"),
    Parameter("detection_finetune_blocks", INT, minimum=0, maximum=30,
              help="top backbone blocks the detector trains with its loss (the classifier shares them and its loss "
                   "joins in); 0: a head on the frozen backbone"),
    Parameter("detection_time_budget_s", FLOAT, minimum=10, maximum=24 * 3600, label="Detection time budget (s)",
              help="seconds for the whole detection step; no epoch starts that would end past it"),
    Parameter("serving_export", BOOL, cli=False, label="Serving copy",
              help="add the verified TFLite copy for fast CPU serving"),
    Parameter("serving_int8", BOOL, cli=False, label="Int8 serving copy",
              help="and the full-integer copy, served when it passes its check"),
)


def parameter(name: str, *, parameters: Sequence[Parameter] | None = None) -> Parameter:
    return {p.name: p for p in _schema(parameters)}[name]


def parameters_clean(values: Mapping[str, object], *, parameters: Sequence[Parameter] | None = None) -> dict:
    """``values`` checked and coerced, in their order; ``ParameterError`` names the first bad one."""
    schema = {p.name: p for p in _schema(parameters)}
    cleaned = {}
    for name, value in values.items():
        if name not in schema:
            raise ParameterError(name, f"Unknown training parameter {name!r}.", details={"allowed": sorted(schema)})
        cleaned[name] = schema[name].clean(value)
    return cleaned


def train_config(values: Mapping[str, object], *, parameters: Sequence[Parameter] | None = None,
                 **machine) -> TrainConfig:
    """The ``TrainConfig`` for cleaned parameters; ``machine`` holds what the installation decides
    (weight files, caches)."""
    schema = {p.name: p for p in _schema(parameters)}
    return TrainConfig(**{name: schema[name].config_value(value) if name in schema else value
                          for name, value in values.items()}, **machine)


def _schema(parameters: Sequence[Parameter] | None) -> Sequence[Parameter]:
    # Looked up at each call, not bound at import, so a caller (or a test) can pass its own.
    return PARAMETERS if parameters is None else parameters


def describe(param: Parameter) -> str:
    """One line for people: help, limits or choices, default."""
    if param.kind in (INT, FLOAT):
        allowed = f"{param.minimum} to {param.maximum}"
    elif param.kind == CHOICE:
        allowed = ", ".join(param.choices)
    elif param.kind == BOOL:
        allowed = "true or false"
    else:
        allowed = "text"
    default = param.default
    return f"{param.help} ({allowed}; default {str(default).lower() if isinstance(default, bool) else default})"


__all__ = ["AUTO_ON_OFF", "BOOL", "CHOICE", "FLOAT", "INT", "PARAMETERS", "STR", "Parameter", "ParameterError",
           "describe", "parameter", "parameters_clean", "train_config"]
