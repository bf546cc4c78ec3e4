"""Row ids that come from outside: URL paths, form fields, query strings.

Every table's key is a 64-bit integer. A number outside 1..2**63-1 names no row, but SQLite
raises OverflowError on binding it (PostgreSQL merely finds nothing), so such a number must
be turned away before it reaches a query: a 404 in a path, "Select a valid choice" in a form.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django import forms
from django.db import models

ID_MAX = 2**63 - 1

_M = TypeVar("_M", bound=models.Model)


def parse_id(value: Any) -> int | None:
    """The id ``value`` names, or None when it cannot name a row."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 19:
        number = int(value.strip())
    else:
        return None
    return number if 1 <= number <= ID_MAX else None


class IdConverter:
    """``<id:pk>`` in URL patterns: like ``<int:pk>``, but a number no row can have is a 404."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(f"{value} is not an id")  # the resolver's "no match": a 404
        return number

    def to_url(self, value: int) -> str:
        return str(value)


def _integer_key(field: forms.ModelChoiceField[Any]) -> bool:
    if field.queryset is None:
        return False
    meta = field.queryset.model._meta
    key = meta.get_field(field.to_field_name) if field.to_field_name else meta.pk
    return isinstance(key, models.IntegerField)  # AutoField and BigAutoField too


class ModelChoiceField(forms.ModelChoiceField[_M]):
    """Django's field, but an id no row can have is "Select a valid choice", not a 500."""

    def to_python(self, value: Any) -> Any:
        named = value not in self.empty_values and not isinstance(value, models.Model)
        if named and _integer_key(self) and parse_id(value) is None:
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField[_M]):
    """Django's field, but an id no row can have is "Select a valid choice", not a 500."""

    def _check_values(self, value: Any) -> Any:
        if _integer_key(self) and not isinstance(value, str | bytes):
            for item in value:
                if not isinstance(item, models.Model) and parse_id(item) is None:
                    raise forms.ValidationError(
                        self.error_messages["invalid_choice"], code="invalid_choice", params={"value": item}
                    )
        return super()._check_values(value)  # type: ignore[misc]
