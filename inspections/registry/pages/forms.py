"""The registry pages' forms: start a training run, promote a version."""

from __future__ import annotations

from django import forms

from mlcore.artefact import AUTO_BACKBONE, BACKBONE_CHOICES


class TrainingRunStartForm(forms.Form):
    backbone = forms.ChoiceField(choices=[(name, name) for name in BACKBONE_CHOICES], required=False,
                                 initial=AUTO_BACKBONE)
    finetune = forms.ChoiceField(choices=[("auto", "auto (only if it helps)"), ("on", "on"), ("off", "off")],
                                 required=False, initial="auto", label="Fine-tuning")
    head_epochs = forms.IntegerField(required=False, min_value=1, max_value=1000, label="Head epochs",
                                     widget=forms.NumberInput(attrs={"placeholder": "default"}))

    def training_parameters(self) -> dict:
        """The parameters for ``training_run_start`` (which validates them again)."""
        params = {"backbone": self.cleaned_data["backbone"] or AUTO_BACKBONE,
                  "finetune": self.cleaned_data["finetune"] or "auto"}
        if self.cleaned_data.get("head_epochs") is not None:
            params["head_epochs"] = self.cleaned_data["head_epochs"]
        return params


class PromoteForm(forms.Form):
    repredict = forms.BooleanField(required=False, label="also re-predict the images waiting for review")
