"""What the training run page shows beside the progress bar: the run's parameters as a table (named
and explained by mlcore's one parameter schema) and its time, phase by phase, with estimates."""

from __future__ import annotations

from datetime import datetime

from django.forms.utils import pretty_name

from inspections.registry.services.training import LEFT_OUT_KEY
from mlcore.training.parameters import BOOL, CHOICE, FLOAT, PARAMETERS

_SCHEMA = {param.name: param for param in PARAMETERS}


def parameter_rows(parameters: dict) -> list[dict]:
    """One row per recorded parameter, in the schema's order (unknown names last, as recorded)."""
    order = {name: index for index, name in enumerate(_SCHEMA)}
    rows = []
    for name in sorted((n for n in parameters if n != LEFT_OUT_KEY), key=lambda n: (order.get(n, len(order)), n)):
        param, value = _SCHEMA.get(name), parameters[name]
        rows.append({"name": name, "label": (param.label if param and param.label else pretty_name(name)),
                     "value": _value_text(param, value), "help": param.help if param else ""})
    return rows


def _value_text(param, value) -> str:
    if param is None:
        return str(value)
    if param.kind == BOOL:
        return "on" if value else "off"
    if param.kind == CHOICE:
        return str(param.choice_labels.get(value, value))
    if param.kind == FLOAT and isinstance(value, (int, float)):
        return f"{value:g}"
    return str(value)


def left_out_rows(parameters: dict) -> list[dict]:
    """The collecting classes the run's snapshot left out, and why."""
    return [{"name": name, "reason": facts.get("reason", "")}
            for name, facts in sorted((parameters.get(LEFT_OUT_KEY) or {}).items())]


def duration_text(seconds: float | None) -> str:
    """45 s, 3 min 05 s, 1 h 02 min (the same words as static/js/training_run.js)."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def estimate_text(phase: dict) -> str:
    if phase["state"] == "done":
        return ""
    if phase["estimate_s"] is None:
        return f"unknown: {phase['basis']}"
    amount = duration_text(phase["estimate_s"])
    return f"about {amount} left ({phase['basis']})" if phase["state"] == "current" else f"about {amount} ({phase['basis']})"


def timing_context(timing: dict) -> dict:
    """The timing with its texts, for the template (the script rewrites them from the API's figures)."""
    phases = [{**phase, "seconds_text": duration_text(phase["seconds"]) if phase["seconds"] is not None else "",
               "estimate_text": estimate_text(phase)} for phase in timing["phases"]]
    remaining = ""
    if timing["remaining_s"] is not None:
        remaining = ("at least " if timing["remaining_is_lower_bound"] else "about ") + duration_text(timing["remaining_s"])
    return {**timing, "phases": phases, "elapsed_text": duration_text(timing["elapsed_s"]),
            "waiting_text": duration_text(timing["waiting_s"]), "remaining_text": remaining,
            "finish_at_time": datetime.fromisoformat(timing["finish_at"]) if timing["finish_at"] else None}
