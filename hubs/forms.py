from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from core import images
from core.ids import ModelChoiceField
from hubs.models import Hub, HubGroup
from hubs.slots import GROUP_EDITOR

ICON_MAX_BYTES = 2 * 1024 * 1024
ICON_ACCEPT = "image/jpeg,image/png,image/webp"


class HubGroupForm(forms.ModelForm[HubGroup]):
    upsell_url = forms.URLField(
        label="Upsell URL",
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="URL: an outside checkout or landing page (http or https).",
    )

    class Meta:
        model = HubGroup
        fields = [
            "name",
            "description",
            "permission",
            "upsell",
            "upsell_cta",
            "upsell_description",
            "upsell_url",
        ]
        labels = {"upsell": "Upsell"}
        help_texts = {
            "permission": "Public: open to every logged-in user. Private: shown to everyone, open only to buyers "
            "and users you grant it to. Hidden: shown to and open for admins only.",
            "upsell": "What users without access see on a private group's paywall.",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "upsell_description": forms.Textarea(attrs={"rows": 3}),
            "permission": forms.RadioSelect,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        upsell_field = self.fields["upsell"]
        assert isinstance(upsell_field, forms.ChoiceField)
        upsell_field.choices = HubGroup.Upsell.choices
        # Higher layers' fields (memberships: the popup's offer), from hubs.slots.GROUP_EDITOR.
        self.parts = list(GROUP_EDITOR)
        self._part_fields: list[tuple[str, str]] = []
        for part in self.parts:
            for name, field in part.fields(group=self._group).items():
                self.fields[name] = field
                self._part_fields.append((part.section, name))

    @property
    def _group(self) -> HubGroup | None:
        return self.instance if self.instance.pk else None

    @property
    def popup_part_fields(self) -> list[forms.BoundField]:
        return [self[name] for section, name in self._part_fields if section == "popup"]

    @property
    def group_data(self) -> dict[str, Any]:
        """The cleaned values of hubs' own fields, for ``hub_group_create``/``update``."""
        parts = {name for _section, name in self._part_fields}
        data = {name: value for name, value in self.cleaned_data.items() if name not in parts}
        return {
            **data,
            "permission": HubGroup.Permission(data["permission"]),
            "upsell": HubGroup.Upsell(data["upsell"]),
        }

    @property
    def part_data(self) -> Mapping[str, Any]:
        """The cleaned values of the higher layers' fields, for their parts' ``save``."""
        return {name: self.cleaned_data.get(name) for _section, name in self._part_fields}

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the group a name.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("permission") != HubGroup.Permission.PRIVATE:
            data["upsell"] = ""
        else:
            self._clean_upsell(data)
        for part in self.parts:
            part.clean(form=self, group=self._group, data=data)
        return data

    def _clean_upsell(self, data: dict[str, Any]) -> None:
        upsell = data.get("upsell")
        if upsell == HubGroup.Upsell.URL:
            url = data.get("upsell_url") or ""
            if not url and "upsell_url" not in self.errors:
                self.add_error("upsell_url", "Enter the URL users without access are sent to.")
            elif url and not url.lower().startswith(("http://", "https://")):
                self.add_error("upsell_url", "Enter a web address starting with http:// or https://.")
        elif upsell == HubGroup.Upsell.POPUP and not data.get("upsell_cta"):
            self.add_error("upsell_cta", "Enter the call-to-action text of the paywall button.")


class HubForm(forms.ModelForm[Hub]):
    # Not the model's ImageField: the upload is judged by its content, whatever its name says,
    # and stored re-encoded (core/images.py), never as sent.
    icon = forms.FileField(
        label="Icon / image",
        required=False,
        widget=forms.FileInput(attrs={"accept": ICON_ACCEPT}),
        help_text="JPEG, PNG or WebP, up to 2 MB. Cropped to a square.",
    )
    remove_icon = forms.BooleanField(label="Remove the current icon", required=False)

    class Meta:
        model = Hub
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the hub a name.")
        return name

    def clean_icon(self) -> images.ProcessedImage | None:
        icon = self.cleaned_data.get("icon")
        if not isinstance(icon, UploadedFile):
            return None
        if icon.size and icon.size > ICON_MAX_BYTES:
            raise forms.ValidationError("This image is larger than 2 MB; upload a smaller one.")
        return images.process_image(icon, size=icon.size or 0, variant=images.ICON)

    @property
    def new_icon(self) -> images.ProcessedImage | None:
        """The image uploaded with this request, checked and re-encoded, if any."""
        icon = self.cleaned_data.get("icon")
        return icon if isinstance(icon, images.ProcessedImage) else None


class PostForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)
    body = forms.CharField(
        label="Post",
        max_length=20_000,
        error_messages={"required": "Write something before posting."},
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "Write something… Markdown works."}),
    )


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment",
        max_length=10_000,
        error_messages={"required": "Write something before commenting."},
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Write a comment… Markdown works."}),
    )


class AccessGrantForm(forms.Form):
    group = ModelChoiceField(
        label="Hub group",
        queryset=HubGroup.objects.filter(permission=HubGroup.Permission.PRIVATE).order_by("position", "id"),
        empty_label="Choose a private group",
        error_messages={"invalid_choice": "Choose one of the private groups."},
    )
    note = forms.CharField(max_length=500, required=False, help_text="Why this user has access (only staff see it).")
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Leave empty for access without an end.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "expires_at"
        ].help_text = f"Leave empty for access without an end. Times are in {timezone.get_current_timezone_name()}."

    def clean_expires_at(self) -> datetime | None:
        expires_at: datetime | None = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Choose a moment in the future.")
        return expires_at
