"""API viewsets: small, with a filterset each; role checks come from ``RolePermission``."""

from typing import cast

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from marketing import filters
from marketing.api import serializers as s
from marketing.api.pagination import KeysetCursorPagination
from marketing.models import ConsentRecord, Customer, Interaction, Job, Offer, Segment
from marketing.pii import identity_of
from marketing.roles import ALL_ROLES, DATA_STEWARD, MARKETER, can_view_pii, has_role
from marketing.segments import available_fields
from marketing.selectors.segments import segment_count_preview
from marketing.services.audit import log_pii_view
from marketing.services.consent import consent_record_append
from marketing.services.erasure import customer_erase
from marketing.services.jobs import job_cancel
from marketing.services.portability import customer_portability_download
from marketing.services.segments import segment_create, segment_delete, segment_update

STEWARDS = (DATA_STEWARD,)


class CustomerViewSet(viewsets.ReadOnlyModelViewSet):
    """Customers with their profile; identifiers are masked without the PII permission."""

    queryset = Customer.objects.select_related("identity")
    serializer_class = s.CustomerSerializer
    filterset_class = filters.CustomerFilter
    # Prefixes only: each has an index (migration 0015); a substring search reads every row.
    search_fields = ["^external_id", "^pseudonym"]
    ordering_fields = ["id", "external_id", "created_at", "updated_at"]
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

    @extend_schema(request=None, responses=s.ErasureSerializer)
    @action(detail=True, methods=["post"], write_roles=STEWARDS, filter_backends=[])
    def erase(self, request: Request, pk: str | None = None) -> Response:
        """Erase the customer: identity, interactions and consent history are deleted."""
        customer = self.get_object()
        pseudonym = customer.pseudonym
        counts = customer_erase(customer=customer, by=request.user)
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
            403: OpenApiResponse(s.DetailSerializer, description="Data stewards only"),
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

    @extend_schema(responses=s.ConsentRecordSerializer(many=True))
    @action(
        detail=True, methods=["get"], read_roles=STEWARDS, filter_backends=[], pagination_class=None
    )
    def consents(self, request: Request, pk: str | None = None) -> Response:
        """The customer's full consent history, latest first per purpose."""
        customer = self.get_object()
        records = customer.consents.select_related("recorded_by").order_by(
            "purpose", "-effective_at", "-id"
        )
        return Response(s.ConsentRecordSerializer(records, many=True).data)


class OfferViewSet(viewsets.ModelViewSet):
    queryset = Offer.objects.all()
    serializer_class = s.OfferSerializer
    filterset_class = filters.OfferFilter
    search_fields = ["external_id", "title", "category"]
    ordering_fields = ["title", "price", "created_at"]


class InteractionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Interaction.objects.all()
    serializer_class = s.InteractionSerializer
    filterset_class = filters.InteractionFilter
    ordering_fields = ["occurred_at", "id"]
    ordering = "-occurred_at"
    pagination_class = KeysetCursorPagination


class ConsentRecordViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Consent history: append-only (no update, no delete); data stewards only."""

    queryset = ConsentRecord.objects.select_related("recorded_by")
    serializer_class = s.ConsentRecordSerializer
    filterset_class = filters.ConsentRecordFilter
    ordering_fields = ["effective_at", "id"]
    ordering = "-id"
    pagination_class = KeysetCursorPagination
    read_roles = STEWARDS
    write_roles = STEWARDS

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = consent_record_append(**data, by=self.request.user)


class SegmentViewSet(viewsets.ModelViewSet):
    queryset = Segment.objects.select_related("created_by")
    serializer_class = s.SegmentSerializer
    filterset_class = filters.SegmentFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]
    read_roles = ALL_ROLES
    write_roles = (MARKETER,)

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = segment_create(**serializer.validated_data, by=self.request.user)

    def perform_update(self, serializer: BaseSerializer) -> None:
        # An update's serializer always holds the row (UpdateModelMixin.update).
        segment, data = cast(Segment, serializer.instance), serializer.validated_data
        serializer.instance = segment_update(
            segment=segment,
            name=data.get("name", segment.name),
            rules=data.get("rules", segment.rules),
            description=data.get("description", segment.description),
            by=self.request.user,
        )

    def perform_destroy(self, instance: Segment) -> None:
        segment_delete(segment=instance, by=self.request.user)

    @extend_schema(responses={200: s.CountPreviewSerializer, 400: s.DetailSerializer})
    @action(detail=True, methods=["get"], filter_backends=[])
    def count(self, request: Request, pk: str | None = None) -> Response:
        """How many customers are in the segment now (hidden below the minimum group size)."""
        return self._preview(self.get_object().rules)

    @extend_schema(
        request=s.RulesSerializer,
        responses={200: s.CountPreviewSerializer, 400: s.INVALID},
    )
    @action(detail=False, methods=["post"], write_roles=ALL_ROLES, filter_backends=[])
    def preview(self, request: Request) -> Response:
        """Live count for unsaved rules; a bad rule is a 400 naming the rule."""
        data = s.RulesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._preview(data.validated_data["rules"])

    @extend_schema(responses=s.SegmentFieldSerializer(many=True))
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def fields(self, request: Request) -> Response:
        """The fields, operators and sample values the rule builder offers."""
        return Response(s.SegmentFieldSerializer(available_fields(), many=True).data)

    def _preview(self, rules) -> Response:
        preview = segment_count_preview(rules)
        return Response(s.CountPreviewSerializer(preview).data)


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Long operations with live progress; pages poll the detail endpoint."""

    queryset = Job.objects.select_related("created_by")
    serializer_class = s.JobSerializer
    filterset_class = filters.JobFilter
    ordering_fields = ["created_at", "finished_at", "id"]
    read_roles = ALL_ROLES
    write_roles = (MARKETER,)

    @extend_schema(
        request=None,
        responses={
            200: s.JobSerializer,
            403: OpenApiResponse(
                s.DetailSerializer, description="Only the job's creator or a marketer may cancel"
            ),
        },
    )
    @action(detail=True, methods=["post"], write_roles=ALL_ROLES, filter_backends=[])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        if job.created_by_id != request.user.pk and not has_role(request.user, (MARKETER,)):
            raise PermissionDenied("Only the job's creator or a marketer may cancel it.")
        return Response(self.get_serializer(job_cancel(job=job, by=request.user)).data)
