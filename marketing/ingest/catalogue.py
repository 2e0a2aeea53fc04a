"""The profile attribute catalogue (ProfileField): which attributes customers have, their
types, labels and a few sample values, recorded as imports and the demo loader meet them."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from marketing.models import ProfileField


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    label: str
    data_type: str
    # A few observed values (text fields), offered as choices in the segment builder.
    samples: tuple[Any, ...] = ()
    # The user chose the type on the mapping step: it replaces the catalogue's type.
    chosen: bool = False


# Types whose sample values the segment builder offers.
LISTED_TYPES = (ProfileField.DataType.TEXT, ProfileField.DataType.CATEGORY)


SAMPLE_VALUES_KEPT = 20


def catalogue_attributes(specs: Iterable[AttributeSpec]) -> None:
    """Record profile attributes in the ProfileField catalogue; an existing field keeps its
    type (unless the user chose one for this upload) and label, and text and category fields
    gain newly seen sample values."""
    specs = list(specs)
    with transaction.atomic():
        existing = {
            f.name: f
            for f in ProfileField.objects.select_for_update().filter(
                name__in=[s.name for s in specs]
            )
        }
        new = []
        for spec in specs:
            stored = existing.get(spec.name)
            if stored is None:
                samples = list(spec.samples) if spec.data_type in LISTED_TYPES else []
                new.append(
                    ProfileField(
                        name=spec.name,
                        label=spec.label[:100],
                        data_type=spec.data_type,
                        sample_values=samples,
                    )
                )
                continue
            if spec.chosen and spec.data_type != stored.data_type:
                stored.data_type = spec.data_type
                stored.sample_values = (
                    list(spec.samples)[:SAMPLE_VALUES_KEPT]
                    if spec.data_type in LISTED_TYPES
                    else []
                )
                stored.save(update_fields=["data_type", "sample_values"])
            elif stored.data_type in LISTED_TYPES:
                merged = list(stored.sample_values)
                merged += [v for v in spec.samples if v not in merged]
                if merged[:SAMPLE_VALUES_KEPT] != stored.sample_values:
                    stored.sample_values = merged[:SAMPLE_VALUES_KEPT]
                    stored.save(update_fields=["sample_values"])
        ProfileField.objects.bulk_create(new, ignore_conflicts=True)
