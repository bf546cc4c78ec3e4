"""Forms for offers. They validate and normalise (prices to minor units, images to re-encoded
bytes); they write nothing."""

from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator

from accounts.models import normalize_email
from core import images
from core.ids import ModelChoiceField, ModelMultipleChoiceField
from hubs.models import HubGroup
from memberships import emails
from memberships.models import CURRENCIES, MAXIMUM_AMOUNT, MINIMUM_AMOUNT, Entitlement, Offer, format_money
from memberships.services import OfferFields, offer_publish_problems

_PENDING_SALT = "memberships.pending-image"
_PENDING_MAX_AGE = 60 * 60 * 24
IMAGE_ACCEPT = "image/jpeg,image/png,image/webp"


def pending_image_token(name: str) -> str:
    """A signed reference to an image already stored, so a form re-shown after an error keeps it."""
    return signing.dumps(name, salt=_PENDING_SALT)


def pending_image_name(token: str) -> str:
    if not token:
        return ""
    try:
        name = signing.loads(token, salt=_PENDING_SALT, max_age=_PENDING_MAX_AGE)
    except signing.BadSignature:
        return ""
    return name if isinstance(name, str) and name.startswith("offers/") else ""


def _placeholder_check(value: str) -> str:
    unknown = emails.unknown_placeholders(value)
    if unknown:
        known = ", ".join("{{ " + name + " }}" for name in emails.PLACEHOLDERS)
        wrong = ", ".join("{{ " + name + " }}" for name in unknown)
        raise ValidationError(f"Unknown placeholder {wrong}. You can use {known}.")
    return value


class OfferForm(forms.Form):
    """The whole offer editor. ``offer_fields()`` gives the model values after validation."""

    title = forms.CharField(max_length=200, help_text="What buyers see on the offer and checkout pages.")
    description = forms.CharField(
        max_length=5_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shown under the title on the checkout page: what the membership is and who it is for.",
    )
    slug = forms.SlugField(
        label="Offer page address",
        max_length=220,
        required=False,
        help_text="The last part of the offer page's URL. Left blank, it is made from the title; "
        "changing the title later does not change it.",
    )
    pricing = forms.ChoiceField(label="Pricing model", choices=Offer.Pricing.choices, widget=forms.RadioSelect)
    price = forms.DecimalField(
        label="Price",
        required=False,
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
        error_messages={"max_decimal_places": "Use at most two decimals, like 9.99."},
    )
    currency = forms.ChoiceField(choices=[(code, f"{code.upper()} ({name})") for code, (name, _) in CURRENCIES.items()])
    interval = forms.ChoiceField(label="Billing interval", choices=[("", "—"), *Offer.Interval.choices], required=False)
    grace_period_days = forms.IntegerField(
        label="Grace period (days)",
        min_value=0,
        max_value=30,
        initial=3,
        help_text="How long a buyer whose renewal payment fails keeps access while Stripe retries.",
    )
    refund_policy = forms.TypedChoiceField(
        label="When a payment is refunded in full",
        choices=Offer.RefundPolicy.choices,
        initial=Offer.RefundPolicy.REVOKE,
        # Left out (an older form, a script): the default, as for a new offer.
        required=False,
        empty_value=Offer.RefundPolicy.REVOKE,
        widget=forms.RadioSelect,
        help_text="A lost dispute always ends access.",
    )
    renewal_receipts = forms.BooleanField(label="Email a receipt for each renewal", required=False, initial=True)
    hub_groups = ModelMultipleChoiceField(
        label="Community permissions",
        queryset=HubGroup.objects.exclude(permission=HubGroup.Permission.HIDDEN),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The hub groups buyers of this offer get. Changes apply to past buyers too.",
    )
    thumbnail = forms.FileField(
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}),
        help_text="Shown on the checkout page. JPEG, PNG or WebP, at most 10 MB "
        "and 25 megapixels. Cropped to a square.",
    )
    thumbnail_pending = forms.CharField(required=False, widget=forms.HiddenInput)
    cover = forms.FileField(
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}),
        help_text="A wide image across the top of the checkout page. JPEG, PNG or WebP, at most 10 MB.",
    )
    cover_pending = forms.CharField(required=False, widget=forms.HiddenInput)
    remove_cover = forms.BooleanField(label="Remove the cover", required=False)
    confirmation_subject = forms.CharField(
        label="Email subject", max_length=200, required=False, widget=forms.TextInput(attrs={"data-preview": "subject"})
    )
    confirmation_body = forms.CharField(
        label="Email body",
        max_length=10_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "data-preview": "body"}),
    )
    redirect_enabled = forms.BooleanField(label="Redirect users to a custom link", required=False)
    redirect_url = forms.CharField(
        label="Custom link",
        max_length=500,
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/thank-you"}),
    )
    resell_enabled = forms.BooleanField(label="Enable customers to resell this offer for a commission", required=False)
    resell_commission_percent = forms.IntegerField(
        label="Resell commission",
        required=False,
        help_text="A percentage of each sale a partner refers, from 1 to 90.",
        min_value=1,
        max_value=90,
        error_messages={
            "min_value": "The commission is between 1 and 90 percent.",
            "max_value": "The commission is between 1 and 90 percent.",
        },
    )
    resell_description = forms.CharField(
        label="Affiliate program description",
        max_length=5_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    custom_code = forms.CharField(
        label="Custom code",
        max_length=20_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "code"}),
    )
    landing_enabled = forms.BooleanField(label="Show a landing page before checkout", required=False)
    landing_headline = forms.CharField(label="Headline", max_length=200, required=False)
    landing_body = forms.CharField(
        label="Text (Markdown)", max_length=20_000, required=False, widget=forms.Textarea(attrs={"rows": 8})
    )
    landing_includes = forms.CharField(
        label="What the membership includes",
        max_length=5_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One item per line. Left blank, the names of the hub groups above are listed.",
    )
    landing_cta_label = forms.CharField(
        label="Button label", max_length=60, required=False, widget=forms.TextInput(attrs={"placeholder": "Join now"})
    )

    def __init__(self, *args: Any, offer: Offer | None = None, **kwargs: Any) -> None:
        self.offer = offer
        if not kwargs.get("initial"):
            kwargs["initial"] = initial_from_offer(offer)
        super().__init__(*args, **kwargs)
        self.thumbnail_image: images.ProcessedImage | None = None
        self.cover_image: images.ProcessedImage | None = None

    # --- Fields --------------------------------------------------------------------------------
    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if slug:
            taken = Offer.objects.filter(slug=slug)
            if self.offer is not None:
                taken = taken.exclude(pk=self.offer.pk)
            if taken.exists():
                raise ValidationError("Another offer already uses this address.")
        return slug

    def _clean_image(self, name: str, variant: images.Variant) -> images.ProcessedImage | None:
        upload = self.cleaned_data.get(name)
        if not isinstance(upload, UploadedFile):
            return None
        processed = images.process_image(upload, size=upload.size or 0, variant=variant)
        setattr(self, f"{name}_image", processed)
        return processed

    def clean_thumbnail(self) -> images.ProcessedImage | None:
        return self._clean_image("thumbnail", images.THUMBNAIL)

    def clean_cover(self) -> images.ProcessedImage | None:
        return self._clean_image("cover", images.COVER)

    def clean_thumbnail_pending(self) -> str:
        return pending_image_name(self.cleaned_data.get("thumbnail_pending", ""))

    def clean_cover_pending(self) -> str:
        return pending_image_name(self.cleaned_data.get("cover_pending", ""))

    def clean_confirmation_subject(self) -> str:
        return _placeholder_check(self.cleaned_data["confirmation_subject"].strip())

    def clean_confirmation_body(self) -> str:
        return _placeholder_check(self.cleaned_data["confirmation_body"].strip())

    def clean_redirect_url(self) -> str:
        url: str = self.cleaned_data["redirect_url"].strip()
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                raise ValidationError(
                    "Enter a full web address starting with https:// or http://, like https://example.com/thanks."
                ) from None
        return url

    # --- The whole form ------------------------------------------------------------------------
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        pricing = data.get("pricing")
        currency = data.get("currency") or "usd"
        if pricing in (Offer.Pricing.ONE_TIME, Offer.Pricing.RECURRING):
            price = data.get("price")
            if price is None:
                if "price" not in self.errors:
                    self.add_error("price", "Enter a price for a paid offer.")
            else:
                amount = int((price * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
                if amount < MINIMUM_AMOUNT:
                    self.add_error(
                        "price",
                        f"The minimum price is {format_money(MINIMUM_AMOUNT, currency)} (Stripe's minimum). "
                        "Choose Free to give it away.",
                    )
                elif amount > MAXIMUM_AMOUNT:
                    self.add_error("price", f"The maximum price is {format_money(MAXIMUM_AMOUNT, currency)}.")
                else:
                    data["price_amount"] = amount
            if pricing == Offer.Pricing.RECURRING and not data.get("interval"):
                self.add_error("interval", "Choose how often buyers are charged.")
        if self.offer is not None and self.offer.is_published:
            self._check_still_publishable(data)
        if data.get("redirect_enabled") and not data.get("redirect_url") and "redirect_url" not in self.errors:
            self.add_error("redirect_url", "Enter the link to send buyers to, or turn the redirect off.")
        if data.get("resell_enabled"):
            if pricing == Offer.Pricing.FREE:
                self.add_error("resell_enabled", "Resell rights are for paid offers only.")
            elif data.get("resell_commission_percent") is None and "resell_commission_percent" not in self.errors:
                self.add_error("resell_commission_percent", "Enter a commission between 1 and 90 percent.")
        return data

    def _check_still_publishable(self, data: dict[str, Any]) -> None:
        """A published offer keeps meeting the publish rules (``offer_publish_problems``) for
        what this save changes: its hub groups, and its pricing when a free offer becomes paid."""
        assert self.offer is not None
        changing = set()
        if "hub_groups" in data:
            changing.add("hub_groups")
        if self.offer.is_free and data.get("pricing"):
            changing.add("pricing")
        problems = offer_publish_problems(
            offer=self.offer, hub_groups=data.get("hub_groups"), pricing=data.get("pricing"), published=True
        )
        for problem in problems:
            if problem.field in changing:
                self.add_error(problem.field, problem.message)

    def offer_fields(self) -> OfferFields:
        """The validated values, as model fields (free and one-time offers carry no interval)."""
        data = self.cleaned_data
        # Each is its form field's cleaned value (text already stripped), but the amount, which
        # the form takes as a price in major units, and what only some pricings carry.
        fields = OfferFields(**{name: data[name] for name in OfferFields.names() - {"price_amount"}})
        free = fields.pricing == Offer.Pricing.FREE
        resell = fields.resell_enabled and not free
        return dataclasses.replace(
            fields,
            price_amount=0 if free else data["price_amount"],
            interval=fields.interval if fields.pricing == Offer.Pricing.RECURRING else "",
            resell_enabled=resell,
            resell_commission_percent=fields.resell_commission_percent if resell else None,
        )


def initial_from_offer(offer: Offer | None) -> dict[str, Any]:
    """The editor's starting values: the offer's, or a new offer's defaults (``OfferFields()``)."""
    initial: dict[str, Any] = dataclasses.asdict(OfferFields() if offer is None else OfferFields.of(offer))
    # The form shows the price in major units.
    amount = initial.pop("price_amount")
    initial["price"] = (
        None if initial["pricing"] == Offer.Pricing.FREE else (Decimal(amount) / 100).quantize(Decimal("0.01"))
    )
    if offer is not None:
        initial["slug"] = offer.slug
        if offer.pk:
            initial["hub_groups"] = list(offer.hub_groups.all())
    return initial


class FreeClaimForm(forms.Form):
    """The buyer's details on a free offer's checkout page."""

    full_name = forms.CharField(
        label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = forms.EmailField(
        label="Email address", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean_full_name(self) -> str:
        return " ".join(self.cleaned_data["full_name"].split())


class BuyersFilterForm(forms.Form):
    """The Users page's buyer filters (a GET form): an offer or all, a status or any. An unknown
    value is an error the page shows, and that filter is left off."""

    offer = ModelChoiceField(
        queryset=Offer.objects.order_by("title"),
        required=False,
        empty_label="All offers",
        error_messages={"invalid_choice": "Choose an offer from the list."},
    )
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Entitlement.Status.choices],
        required=False,
        error_messages={"invalid_choice": "Choose a status from the list."},
    )

    def filters(self) -> dict[str, Any]:
        """``offer`` and ``status`` for ``selectors.buyers_listed``: the valid ones only."""
        if not self.is_bound:
            return {"offer": None, "status": ""}
        self.is_valid()  # cleaned_data then holds the valid fields only
        return {"offer": self.cleaned_data.get("offer"), "status": self.cleaned_data.get("status", "")}

    @property
    def query(self) -> str:
        """The valid filters as a query string (the export's and the pages' links)."""
        filters = self.filters()
        return urlencode({"offer": filters["offer"].pk if filters["offer"] else "", "status": filters["status"]})
