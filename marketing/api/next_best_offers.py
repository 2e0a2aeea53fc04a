"""API for the next best offers of one customer or visitor, chosen in real time by the model
in use for every offer (``marketing.services.next_best_offers``)."""

import copy
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.api.common import DetailSerializer
from marketing.models import TrainingRun
from marketing.roles import LINKING_ROLES
from marketing.services.champions import NO_CHAMPION_EVERY_OFFER
from marketing.services.next_best_offers import (
    DEFAULT_DIVERSITY,
    MAX_LIMIT,
    NO_PROFILING_CONSENT,
    REFUSALS,
    SUPPRESSED,
    UNKNOWN_CUSTOMER,
    UNKNOWN_FIELD,
    NextBestOfferRefused,
    NextBestOffers,
    ProfileInvalid,
    next_best_offers,
    visitor_profile,
)
from marketing.services.training_params import message
from marketing.throttles import NextBestOfferThrottle


class NextBestOffersRequestSerializer(serializers.Serializer):
    external_id = serializers.CharField(
        required=False,
        max_length=128,
        help_text="A stored customer's external id (or send `profile`)",
    )
    profile = serializers.DictField(
        required=False,
        help_text="A visitor not yet stored: {profile field: value}, fields of the catalogue "
        "of profile fields (or send `external_id`)",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=5, help_text="Offers to return at most"
    )
    target = serializers.ChoiceField(
        choices=TrainingRun.Target.choices,
        default=TrainingRun.Target.CONVERSION,
        help_text="The response the model in use predicts",
    )
    diversity = serializers.FloatField(
        min_value=0.0,
        max_value=1.0,
        default=DEFAULT_DIVERSITY,
        help_text="MMR weight: 0 = best scores only, higher = more varied categories",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # DRF gives every instance a deep copy of the declared fields, which rebuilds each
        # field and its validators: on this endpoint that cost more than the rest of the
        # validation, on every request. A shallow copy is enough here: DRF binds the copy
        # to this instance (its name and parent), and nothing changes the fields per request.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def validate_profile(self, values: dict[str, Any]) -> dict[str, Any]:
        try:
            return visitor_profile(values)
        except ProfileInvalid as exc:
            raise serializers.ValidationError(
                {name: [text] for name, text in exc.errors.items()}
            ) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("external_id" in attrs) == ("profile" in attrs):
            raise serializers.ValidationError(
                "Send either `external_id` (a stored customer) or `profile` (a visitor)."
            )
        return attrs


class ChosenOfferSerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1 = first")
    offer_id = serializers.IntegerField()
    external_id = serializers.CharField(help_text="The offer's external id")
    title = serializers.CharField()
    category = serializers.CharField(allow_blank=True)
    score = serializers.FloatField(help_text="The model's probability of the response")


class NextBestOffersSerializer(serializers.Serializer):
    external_id = serializers.CharField(
        allow_null=True, help_text="The customer's external id as sent (null for a visitor)"
    )
    pseudonym = serializers.CharField(
        allow_null=True, help_text="The customer's pseudonym (null for a visitor)"
    )
    target = serializers.CharField()
    training_run = serializers.IntegerField(help_text="The training run whose model chose")
    model_id = serializers.CharField()
    scorer = serializers.CharField(
        help_text="fast (the distilled LightGBM student) or served (a model without one); "
        "customers the model learned from are scored by its cross-fitted fold models, as in "
        "a scoring run"
    )
    diversity = serializers.FloatField()
    frequency_capped = serializers.IntegerField(
        help_text="Offers left out: shown NBO_FREQUENCY_CAP times or more in the last "
        "NBO_FREQUENCY_DAYS days"
    )
    offers = ChosenOfferSerializer(many=True, help_text="Best first, re-ranked for diversity")


class RefusalSerializer(serializers.Serializer):
    detail = serializers.CharField()
    reason = serializers.ChoiceField(
        choices=sorted(REFUSALS),
        required=False,
        help_text="Why no offers are chosen (absent when the role may not ask)",
    )


REFUSAL_TEXTS = {
    "no_champion": message(NO_CHAMPION_EVERY_OFFER, target="conversion"),
    "unknown_customer": UNKNOWN_CUSTOMER,
    "no_profiling_consent": NO_PROFILING_CONSENT,
    "suppressed": SUPPRESSED,
}


def _refusal(description: str, *reasons: str) -> OpenApiResponse:
    return OpenApiResponse(
        RefusalSerializer,
        description=description,
        examples=[
            OpenApiExample(reason, value={"detail": REFUSAL_TEXTS[reason], "reason": reason})
            for reason in reasons
        ],
    )


INVALID_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="What is wrong: {field: [messages, ...]}; a profile's fields under profile",
    examples=[
        OpenApiExample(
            "Profile",
            value={
                "profile": {"shoe_size": [UNKNOWN_FIELD], "age": ["This value is not a number."]}
            },
        ),
        OpenApiExample(
            "Limit", value={"limit": ["Ensure this value is less than or equal to 50."]}
        ),
    ],
)


class NextBestOffersView(APIView):
    """The best offers for one person now, by the model in use for every offer (the
    target's champion), re-ranked for diversity, without the offers the customer was
    shown too often lately. A stored customer needs a valid profiling consent and must not
    be suppressed; a visitor is scored from the profile sent. Marketers and data stewards,
    the roles that see scores beside external ids."""

    write_roles = LINKING_ROLES
    throttle_classes = [NextBestOfferThrottle]

    @extend_schema(
        request=NextBestOffersRequestSerializer,
        responses={
            200: NextBestOffersSerializer,
            400: INVALID_REQUEST,
            403: _refusal(
                "The customer has no valid profiling consent or is suppressed, or the role "
                "may not ask",
                "no_profiling_consent",
                "suppressed",
            ),
            404: _refusal(
                "No stored customer has this external id (erased ones included)",
                "unknown_customer",
            ),
            409: _refusal(
                "No model is in use for every offer for this target: promote one",
                "no_champion",
            ),
            429: OpenApiResponse(DetailSerializer, description="Too many requests; retry later"),
        },
        operation_id="next_best_offers_create",
    )
    def post(self, request: Request) -> Response:
        data = NextBestOffersRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            chosen = next_best_offers(**values)
        except NextBestOfferRefused as exc:
            return Response({"detail": str(exc), "reason": exc.reason}, status=exc.status_code)
        return Response(answer(chosen, values.get("external_id")))


def answer(chosen: NextBestOffers, external_id: str | None) -> dict[str, Any]:
    """The answer as ``NextBestOffersSerializer`` writes it (a test holds the two together),
    built directly: writing it through the serializer's fields cost a third of the time the
    service spends choosing the offers."""
    return {
        "external_id": external_id,
        "pseudonym": chosen.pseudonym,
        "target": chosen.target,
        "training_run": chosen.training_run,
        "model_id": chosen.model_id,
        "scorer": chosen.scorer,
        "diversity": chosen.diversity,
        "frequency_capped": chosen.frequency_capped,
        "offers": [
            {
                "rank": offer.rank,
                "offer_id": offer.offer_id,
                "external_id": offer.external_id,
                "title": offer.title,
                "category": offer.category,
                "score": offer.score,
            }
            for offer in chosen.offers
        ],
    }
