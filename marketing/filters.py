"""django-filter filtersets for the API (query parameters on the list endpoints)."""

from django_filters import rest_framework as filters

from marketing.models import ConsentRecord, Customer, Interaction, Job, Offer, Segment, Upload


class CustomerFilter(filters.FilterSet):
    country = filters.CharFilter(field_name="identity__country", lookup_expr="iexact")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

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
    occurred_after = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields = ["customer", "offer", "kind", "campaign"]


class ConsentRecordFilter(filters.FilterSet):
    effective_after = filters.IsoDateTimeFilter(field_name="effective_at", lookup_expr="gte")
    effective_before = filters.IsoDateTimeFilter(field_name="effective_at", lookup_expr="lt")

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
