from __future__ import annotations

from django import forms

from affiliates.models import Partner


class PartnerStatusForm(forms.Form):
    """The creator's Pause / Resume / Remove buttons; Remove needs ``confirm=yes``."""

    ACTIONS = {
        "pause": Partner.Status.PAUSED,
        "resume": Partner.Status.ACTIVE,
        "remove": Partner.Status.REMOVED,
    }

    action = forms.ChoiceField(choices=[(key, key.title()) for key in ACTIONS])
    confirm = forms.CharField(required=False, max_length=3)

    def __init__(self, *args: object, partner: Partner, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.partner = partner

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        action = cleaned.get("action")
        if self.partner.status == Partner.Status.REMOVED:
            raise forms.ValidationError("This partner was removed; a removed partner cannot be changed.")
        if action == "pause" and self.partner.status != Partner.Status.ACTIVE:
            raise forms.ValidationError("Only an active partner can be paused.")
        if action == "resume" and self.partner.status != Partner.Status.PAUSED:
            raise forms.ValidationError("Only a paused partner can be resumed.")
        return cleaned

    @property
    def needs_confirmation(self) -> bool:
        return self.cleaned_data.get("action") == "remove" and self.cleaned_data.get("confirm") != "yes"

    @property
    def status(self) -> Partner.Status:
        return self.ACTIONS[str(self.cleaned_data["action"])]


class CommissionsStopForm(forms.Form):
    """The creator's Stop commissions button: a first press asks, ``confirm=yes`` stops."""

    confirm = forms.CharField(required=False, max_length=3)

    @property
    def confirmed(self) -> bool:
        return self.is_valid() and self.cleaned_data.get("confirm") == "yes"
