"""API for the consent history: append-only, data stewards only."""

from typing import Any

from django.utils import timezone
from rest_framework import mixins, serializers, viewsets
from rest_framework.serializers import BaseSerializer

from marketing import filters
from marketing.api.common import STEWARDS, username_field
from marketing.api.pagination import KeysetCursorPagination
from marketing.models import ConsentRecord, LawfulBasis
from marketing.models.consent import CONSENT_HISTORY_FIELDS
from marketing.services.consent import consent_record_append


class ConsentRecordSerializer(serializers.ModelSerializer):
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a declared DRF field
        choices=ConsentRecord.Source.choices, default=ConsentRecord.Source.API
    )
    effective_at = serializers.DateTimeField(
        required=False, help_text="When it takes effect; now when left out"
    )
    # Required, not defaulted: the legal basis and the notice shown are facts about how the
    # person decided, which nobody may guess for them.
    lawful_basis = serializers.ChoiceField(
        choices=LawfulBasis.choices,
        error_messages={"required": "Which GDPR Art. 6(1) basis applies: one of a-f."},
    )
    notice_version = serializers.CharField(
        max_length=32,
        allow_blank=True,
        error_messages={
            "required": "The version of the notice shown to the person; "
            "an empty string when none was shown."
        },
        help_text="The version of the privacy notice shown; empty when none was",
    )
    recorded_by = username_field()
    given_at = serializers.DateTimeField(read_only=True, allow_null=True)
    withdrawn_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = ConsentRecord
        fields = ["id", "customer", *CONSENT_HISTORY_FIELDS, "given_at", "withdrawn_at"]
        read_only_fields = ["recorded_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The service takes a record without ``effective_at`` as effective now; fix that time
        # here, so that the expiry is checked against the time the record will carry.
        attrs.setdefault("effective_at", timezone.now())
        expires_at = attrs.get("expires_at")
        if expires_at and expires_at <= attrs["effective_at"]:
            raise serializers.ValidationError(
                {"expires_at": "The expiry must be later than the time it takes effect."}
            )
        return attrs


class ConsentRecordViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Consent history: append-only (no update, no delete); data stewards only."""

    queryset = ConsentRecord.objects.select_related("recorded_by")
    serializer_class = ConsentRecordSerializer
    filterset_class = filters.ConsentRecordFilter
    # By id (the order records were added): an index by effective time would be one more
    # write for every record of every import.
    ordering_fields = ["id"]
    ordering = "-id"
    pagination_class = KeysetCursorPagination
    read_roles = STEWARDS
    write_roles = STEWARDS

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = consent_record_append(**data, by=self.request.user)
