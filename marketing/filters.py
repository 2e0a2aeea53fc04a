"""django-filter filtersets for the API (query parameters on the list endpoints)."""

from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from marketing.models import ConsentRecord, Customer, Interaction, Job, Offer, Segment, Upload


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time turned into UTC before it reaches the database: ISO 8601 allows UTC
    offsets up to 23:59, PostgreSQL refuses any beyond 15:59 (a 500 instead of a filter)."""

    def to_python(self, value) -> datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError(
                "This time falls outside the years 1 to 9999 in UTC.", code="invalid"
            ) from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class CustomerFilter(filters.FilterSet):
    country = filters.CharFilter(field_name="identity__country", lookup_expr="iexact")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Customer
        fields = ["external_id", "pseudonym"]


class OfferFilter(filters.FilterSet):
    title = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Offer
        fields = ["external_id", "category", "active"]


class InteractionFilter(filters.FilterSet):
    offer_external_id = filters.CharFilter(field_name="offer__external_id")
    occurred_after = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields = ["customer", "offer", "kind", "campaign"]


class ConsentRecordFilter(filters.FilterSet):
    effective_after = UtcDateTimeFilter(field_name="effective_at", lookup_expr="gte")
    effective_before = UtcDateTimeFilter(field_name="effective_at", lookup_expr="lt")

    class Meta:
        model = ConsentRecord
        fields = ["customer", "purpose", "status", "source", "lawful_basis"]


class SegmentFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Segment
        fields = ["name"]


class UploadFilter(filters.FilterSet):
    class Meta:
        model = Upload
        fields = ["kind", "status"]


class JobFilter(filters.FilterSet):
    class Meta:
        model = Job
        fields = ["kind", "status", "created_by"]
