from __future__ import annotations

from django import forms

from accounts.models import normalize_email


class CheckoutForm(forms.Form):
    """What a buyer gives on a paid offer's checkout page: never a price."""

    email = forms.EmailField(label="Email address", max_length=254)
    full_name = forms.CharField(label="Full name", max_length=150, required=False)

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean_full_name(self) -> str:
        return " ".join(self.cleaned_data["full_name"].split())
