"""Serializers: shape and validate; writes go through the services."""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from marketing.models import (
    ConsentRecord,
    Customer,
    Interaction,
    Job,
    LawfulBasis,
    Offer,
    Segment,
)
from marketing.pii import identity_of, masked_identity
from marketing.segments import SegmentRuleError, compile_rules


def optional_pk(queryset: QuerySet, *, help_text: str) -> serializers.PrimaryKeyRelatedField:
    """A related row the request may leave out or send as null; both give ``None``."""
    return serializers.PrimaryKeyRelatedField(
        queryset=queryset, required=False, allow_null=True, default=None, help_text=help_text
    )


# A row that a Job fills in, with the job's status, progress and message. No docstring: the
# schema would show it on every subclass.
class JobStatusSerializer(serializers.ModelSerializer):
    # In the order the API shows them, after the row's id.
    JOB_FIELDS = ["job", "status", "progress", "message"]

    status = serializers.ChoiceField(
        source="job.status", choices=Job.Status.choices, read_only=True
    )
    progress = serializers.IntegerField(source="job.progress", read_only=True)
    message = serializers.CharField(source="job.message", read_only=True)


class IdentitySerializer(serializers.Serializer):
    """Personal identifiers: real values with the PII permission, masked otherwise."""

    masked = serializers.BooleanField()
    email = serializers.CharField()
    phone = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    country = serializers.CharField()
    postal_code = serializers.CharField()


class CustomerSerializer(serializers.ModelSerializer):
    identity = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "pseudonym",
            "attributes",
            "identity",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(IdentitySerializer)
    def get_identity(self, customer: Customer) -> dict[str, Any]:
        return masked_identity(identity_of(customer), self.context["request"].user)


class ErasureSerializer(serializers.Serializer):
    erased = serializers.CharField(help_text="The pseudonym of the erased customer")
    identity = serializers.IntegerField()
    interactions = serializers.IntegerField()
    consent_records = serializers.IntegerField()
    upload_rows = serializers.IntegerField(
        help_text="Rows of stored upload files blanked because they held the customer"
    )
    export_files = serializers.IntegerField(
        help_text="Stored export files deleted because they held the customer"
    )


class OfferSerializer(serializers.ModelSerializer):
    class Meta:
        model = Offer
        fields = [
            "id",
            "external_id",
            "title",
            "category",
            "description",
            "price",
            "unit_cost",
            "active",
            "created_at",
            "updated_at",
        ]


class InteractionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = ["id", "customer", "offer", "kind", "value", "occurred_at", "campaign"]
        read_only_fields = fields


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
    recorded_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    given_at = serializers.DateTimeField(read_only=True, allow_null=True)
    withdrawn_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "customer",
            "purpose",
            "status",
            "lawful_basis",
            "effective_at",
            "expires_at",
            "source",
            "notice_version",
            "note",
            "given_at",
            "withdrawn_at",
            "recorded_at",
            "recorded_by",
        ]
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


class SegmentSerializer(serializers.ModelSerializer):
    created_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "rules", "created_by", "created_at", "updated_at"]
        # The model's default (no rules) is not a segment anyone asked for.
        extra_kwargs = {"rules": {"required": True}}

    def validate_rules(self, rules: Any) -> dict[str, Any]:
        if not isinstance(rules, dict):
            raise serializers.ValidationError('Rules must be a group {"op": ..., "rules": [...]}.')
        try:
            compile_rules(rules)
        except SegmentRuleError as error:
            raise serializers.ValidationError(str(error)) from None
        return rules


class RulesSerializer(serializers.Serializer):
    rules = serializers.JSONField(help_text='A rules tree {"op": "and"|"or", "rules": [...]}')


class CountPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField(allow_null=True, help_text="Null when suppressed")
    display = serializers.CharField()
    suppressed = serializers.BooleanField(help_text="True below the minimum group size")
    estimated = serializers.BooleanField(
        help_text="Estimated from a sample of customers (a large base), not counted"
    )


class SegmentFieldSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared DRF field
    group = serializers.CharField()
    type = serializers.CharField()
    operators = serializers.ListField(child=serializers.CharField())
    values = serializers.ListField(child=serializers.JSONField())
    options = serializers.ListField(child=serializers.CharField(), required=False)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# A 400 from a service ({"detail"}) or from a serializer's field checks ({field: [...]}).
INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='What is wrong: {"detail": message} or {field: [messages, ...]}',
    examples=[
        OpenApiExample("Definition", value={"detail": "A cut by score needs a scoring run."}),
        OpenApiExample("Field", value={"segment": ['Invalid pk "99" - object does not exist.']}),
    ],
)


class JobSerializer(serializers.ModelSerializer):
    created_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    is_finished = serializers.BooleanField(read_only=True)
    error = serializers.SerializerMethodField(
        help_text="The failure in full with the kind of error, for staff users only (others "
        "read `message`); tracebacks go to the server log, never here"
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, job: Job) -> str | None:
        # The kind of error names the server's internals; the admin console's users only.
        request = self.context.get("request")
        return job.error if request is not None and request.user.is_staff else None

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "title",
            "status",
            "progress",
            "message",
            "params",
            "result",
            "error",
            "cancel_requested",
            "is_finished",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class SegmentCountSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        allow_null=True, help_text="Null when suppressed or not counted yet"
    )
    display = serializers.CharField()
    suppressed = serializers.BooleanField(help_text="True below the minimum group size")
    computed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the count was made; null: not counted yet"
    )
    stale = serializers.BooleanField(help_text="The rules changed since the count")
    job = JobSerializer(
        allow_null=True, help_text="The count under way (poll /api/jobs/{id}/); null when none runs"
    )
