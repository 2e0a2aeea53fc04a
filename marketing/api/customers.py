"""API for customers and their responses: profiles with identifiers masked without the PII
permission, erasure and the access/portability download for data stewards."""

from typing import Any

from django.db.models import Q, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.request import Request
from rest_framework.response import Response

from marketing import filters
from marketing.api.common import STEWARDS, DetailSerializer
from marketing.api.consents import ConsentRecordSerializer
from marketing.api.pagination import KeysetCursorPagination
from marketing.models import Customer, Interaction
from marketing.pii import identity_of, masked_identity
from marketing.pseudonyms import pseudonym_prefix_q
from marketing.roles import ALL_ROLES, can_view_pii
from marketing.services.audit import log_pii_view
from marketing.services.erasure import customer_erase
from marketing.services.portability import customer_portability_download


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
    scores = serializers.IntegerField(help_text="Scores deleted")
    explanations = serializers.IntegerField(help_text="Explanations of their scores deleted")
    recommendations = serializers.IntegerField(help_text="Offers recommended to them deleted")
    suppressions = serializers.IntegerField(help_text="Suppression list entries deleted")
    audience_memberships = serializers.IntegerField(
        help_text="Places in frozen audiences now held by the erasure token"
    )
    models_flagged = serializers.IntegerField(help_text="Models flagged for retraining")
    flagged_runs = serializers.ListField(
        child=serializers.IntegerField(), help_text="Ids of the training runs flagged"
    )


class InteractionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = ["id", "customer", "offer", "kind", "value", "occurred_at", "campaign"]
        read_only_fields = fields


class CustomerSearch(SearchFilter):
    """``?search=``: customers whose external id (any case) or pseudonym starts with the
    term, each read through an index (a substring search would read every customer)."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        term = request.query_params.get(self.search_param, "").strip()
        if not term:
            return queryset
        return queryset.filter(Q(external_id__istartswith=term) | pseudonym_prefix_q(term))


class CustomerViewSet(viewsets.ReadOnlyModelViewSet):
    """Customers with their profile; identifiers are masked without the PII permission."""

    queryset = Customer.objects.select_related("identity")
    serializer_class = CustomerSerializer
    filterset_class = filters.CustomerFilter
    filter_backends = [DjangoFilterBackend, CustomerSearch, OrderingFilter]
    # What the schema says of ?search= (CustomerSearch does the searching).
    search_fields = ["^external_id", "^pseudonym"]
    # Each order has an index (keyset pages); none by update time, an index every import
    # would rewrite.
    ordering_fields = ["id", "external_id", "created_at"]
    ordering = "id"
    pagination_class = KeysetCursorPagination
    read_roles = ALL_ROLES
    write_roles = STEWARDS

    def paginate_queryset(self, queryset):
        self.shown = super().paginate_queryset(queryset)
        return self.shown

    def list(self, request: Request, *args, **kwargs) -> Response:
        response = super().list(request, *args, **kwargs)
        if can_view_pii(request.user):
            shown = [c for c in self.shown or [] if identity_of(c) is not None]
            log_pii_view(user=request.user, customers=shown, where="api customer list")
        return response

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        customer = self.get_object()
        if can_view_pii(request.user) and identity_of(customer) is not None:
            log_pii_view(user=request.user, customers=customer, where="api customer detail")
        return Response(self.get_serializer(customer).data)

    @extend_schema(request=None, responses=ErasureSerializer)
    @action(detail=True, methods=["post"], write_roles=STEWARDS, filter_backends=[])
    def erase(self, request: Request, pk: str | None = None) -> Response:
        """Erase the customer: identity, interactions, consent history, scores and the rest
        are deleted (``reason``, optional in the body, is kept in the audit trail)."""
        customer = self.get_object()
        pseudonym = customer.pseudonym
        reason = str(request.data.get("reason", "")) if hasattr(request.data, "get") else ""
        counts = customer_erase(customer=customer, by=request.user, reason=reason[:500])
        return Response({"erased": pseudonym, **counts})

    @extend_schema(
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description=(
                    "One JSON document: profile, personal identifiers, one section per kind of "
                    "record (consent history, interactions, scores, explanations, recommendations, "
                    "audience memberships, ...), the exports that held the customer, the models "
                    "trained with their data and the audit events about them"
                ),
            ),
            403: OpenApiResponse(DetailSerializer, description="Data stewards only"),
        }
    )
    @action(
        detail=True, methods=["get"], read_roles=STEWARDS, filter_backends=[], pagination_class=None
    )
    def portability(self, request: Request, pk: str | None = None) -> Response:
        """Everything held about the customer (right of access and portability); audited."""
        customer = self.get_object()
        document = customer_portability_download(customer=customer, by=request.user, where="api")
        return Response(
            document,
            headers={"Content-Disposition": f'attachment; filename="customer-{customer.pk}.json"'},
        )

    @extend_schema(responses=ConsentRecordSerializer(many=True))
    @action(
        detail=True, methods=["get"], read_roles=STEWARDS, filter_backends=[], pagination_class=None
    )
    def consents(self, request: Request, pk: str | None = None) -> Response:
        """The customer's full consent history, latest first per purpose."""
        customer = self.get_object()
        records = customer.consents.select_related("recorded_by").order_by(
            "purpose", "-effective_at", "-id"
        )
        return Response(ConsentRecordSerializer(records, many=True).data)


class InteractionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Interaction.objects.all()
    serializer_class = InteractionSerializer
    filterset_class = filters.InteractionFilter
    ordering_fields = ["occurred_at", "id"]
    ordering = "-occurred_at"
    pagination_class = KeysetCursorPagination
