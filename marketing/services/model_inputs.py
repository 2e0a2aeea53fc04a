"""What a click model reads and stores, the same way in training, scoring and explaining:
the customers a run covers, an offer's columns, the text values a model learned, and results
made safe for JSON columns."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from marketing.models import Customer, Offer, Segment, TrainingRun
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


def known_values_only(record: dict[str, Any], known: dict[str, set[str]] | None) -> dict[str, Any]:
    """A model input row with the text values the model never learned (too rare in
    training) as missing, the way training saw them."""
    if not known:
        return record
    return {
        name: None
        if name in known and isinstance(value, str) and value not in known[name]
        else value
        for name, value in record.items()
    }
