"""What a click model reads and stores, the same way in training, scoring and explaining:
the customers a run covers, an offer's columns, the text values a model learned, and results
made safe for JSON columns."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from marketing.models import Customer, Offer, ProfileField, Segment, TrainingRun
from marketing.selectors.segments import segment_customers


def offer_columns(offer: Offer) -> dict[str, Any]:
    """An offer's fields as model input columns (multi-offer models)."""
    return {
        "offer_title": offer.title,
        "offer_category": offer.category or None,
        "offer_price": float(offer.price) if offer.price is not None else None,
    }


def population(segment: Segment | None) -> QuerySet[Customer]:
    return segment_customers(segment.rules) if segment is not None else Customer.objects.all()


def model_text_values(training: TrainingRun) -> dict[str, set[str]] | None:
    """The text values a trained model learned, per field (None: a model saved before they
    were recorded, which scores every value as it is)."""
    from marketing.filestore import model_registry

    config = model_registry(training.model_id).record(training.model_id).manifest.get("config", {})
    known = config.get("text_values")
    return None if known is None else {field: set(values) for field, values in known.items()}


def field_types() -> dict[str, str]:
    """Each profile attribute's type in the catalogue (the type the user chose wins)."""
    return dict(ProfileField.objects.values_list("name", "data_type"))


# Read as names, whatever the file held (a region code 12 is the word "12").
NAME_TYPES = (ProfileField.DataType.CATEGORY, ProfileField.DataType.TEXT)


def learnable(attributes: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    """A customer's attributes as a model reads them: identifiers left out (one value per
    customer teaches nothing and would single people out), categories and text as text."""
    row: dict[str, Any] = {}
    for name, value in attributes.items():
        data_type = types.get(name)
        if data_type == ProfileField.DataType.IDENTIFIER:
            continue
        if data_type in NAME_TYPES and value is not None and not isinstance(value, str):
            value = as_name(value)
        row[name] = value
    return row


def as_name(value: Any) -> str:
    """A value of a category or text field as its name: 12.0 (stored before the column was
    a category) is the code "12"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def known_values_only(record: dict[str, Any], known: dict[str, set[str]] | None) -> dict[str, Any]:
    """A model input row with the text values the model never learned (too rare in
    training) as missing, the way training saw them; a text field's value stored as a number
    (a code typed as a number before it became a category) is read as its text."""
    if not known:
        return record
    row = {}
    for name, value in record.items():
        if name in known and value is not None:
            if not isinstance(value, str):
                value = as_name(value)
            if value not in known[name]:
                value = None
        row[name] = value
    return row
