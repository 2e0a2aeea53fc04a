"""API for audiences, exports to ad platforms and the suppression list.

Marketers build, freeze and export audiences; data stewards read them and download files;
viewers read the lists but never download a file. Creating an export and downloading one
are throttled (scope "export"). Files are streamed from disk, never loaded whole.
"""

from typing import Any

from django.http import FileResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.validators import UniqueValidator

from marketing.api.common import (
    INVALID,
    THROTTLED,
    DetailSerializer,
    JobStatusSerializer,
    optional_pk,
    username_field,
)
from marketing.api.jobs import JobSerializer
from marketing.exporters.formats import FORMATS, MATCH_KEYS, PLATFORM_CHOICES
from marketing.models import (
    Audience,
    Customer,
    Export,
    Job,
    Offer,
    ScoringRun,
    Segment,
    Suppression,
)
from marketing.responses import export_attachment
from marketing.roles import ALL_ROLES, DATA_STEWARD, MARKETER
from marketing.selectors.audiences import (
    LEFT_OUT_REASONS,
    AudienceCut,
    audience_preview_estimate,
    audiences,
    exports,
)
from marketing.selectors.figures import audience_figures
from marketing.services.audience_results import audience_results_start
from marketing.services.audiences import (
    audience_create,
    audience_freeze_start,
    suppression_add,
    suppression_remove,
)
from marketing.services.exports import (
    export_create,
    export_download,
)
from marketing.services.figures import audience_figures_refresh
from marketing.throttles import ExportThrottle

DOWNLOADERS = (MARKETER, DATA_STEWARD)

# ---- serializers ------------------------------------------------------------------------------


class AudienceSerializer(serializers.ModelSerializer):
    created_by = username_field()
    frozen_by = username_field()
    export_count = serializers.IntegerField(read_only=True)
    control_percent = serializers.SerializerMethodField(
        help_text="Share of the members held back as a control group (never exported), in %; "
        "null: none"
    )
    control_size = serializers.IntegerField(
        read_only=True, help_text="Members held back as control when it was frozen"
    )
    results = serializers.JSONField(
        read_only=True,
        help_text="The last measured results, contacted members against the control group "
        "(POST /api/audiences/{id}/results/ measures them); {} before the first",
    )

    class Meta:
        model = Audience
        fields = [
            "id",
            "name",
            "status",
            "segment",
            "segment_name",
            "segment_rules",
            "scoring_run",
            "offer",
            "cut",
            "cut_value",
            "size",
            "control_percent",
            "control_seed",
            "control_size",
            "consent_snapshot",
            "frozen_at",
            "frozen_by",
            "export_count",
            "results",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_control_percent(self, audience: Audience) -> float | None:
        share = audience.control_share
        return None if share is None else round(100 * share, 6)


class AudienceDefinitionSerializer(serializers.Serializer):
    segment = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all())
    scoring_run = optional_pk(
        ScoringRun.objects.select_related("job", "training_run"),
        help_text="Scores that rank the members; null = no cut",
    )
    offer = optional_pk(
        Offer.objects.all(),
        help_text="The offer whose score ranks a multi-offer run; null = each one's best",
    )
    cut = serializers.ChoiceField(choices=Audience.Cut.choices, default=Audience.Cut.ALL)
    cut_value = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text="N for top_n, a percentage for top_percent, the minimum score for threshold",
    )

    def definition(self) -> dict[str, Any]:
        data = self.validated_data
        return {
            "segment": data["segment"],
            "scoring_run": data["scoring_run"],
            "offer": data["offer"],
            "cut": AudienceCut(data["cut"], data["cut_value"]),
        }


class AudienceCreateSerializer(AudienceDefinitionSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    control_percent = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Share of the members to hold back as a control group when it is frozen, "
        "in % (above 0, at most 50); null or 0: none",
    )
    control_seed = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Seed of the control group's draw (0 to 2147483647): the same seed holds "
        "back the same members; null: a random seed, kept with the audience",
    )


class AudienceResultsRequestSerializer(serializers.Serializer):
    value_per_conversion = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Value of one conversion; null: the offer's price, when it has one",
    )
    cost_per_contact = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Cost of contacting one member; with a value, gives profit and ROI",
    )
    until = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Last day of responses counted (included); null: up to now",
    )


class AudiencePreviewRequestSerializer(AudienceDefinitionSerializer):
    platforms = serializers.ListField(
        child=serializers.ChoiceField(choices=PLATFORM_CHOICES),
        required=False,
        allow_empty=False,
        help_text="Formats to preview; every format when left out",
    )


class FormatReadinessSerializer(serializers.Serializer):
    format = serializers.CharField(help_text="The format's key (see /api/exports/formats/)")
    label = serializers.CharField()  # type: ignore[assignment]  # a declared DRF field
    platform = serializers.CharField()
    exportable = serializers.IntegerField(
        allow_null=True, help_text="Members the consent gate lets through for this format"
    )
    left_out = serializers.DictField(
        child=serializers.IntegerField(allow_null=True),
        help_text="Members left out, by reason; null below the minimum group size",
    )
    left_out_total = serializers.IntegerField(
        allow_null=True, help_text="Members left out for any reason; null below the minimum"
    )
    email = serializers.IntegerField(allow_null=True, help_text="Exportable with a valid email")
    phone = serializers.IntegerField(allow_null=True, help_text="Exportable with a valid phone")
    address = serializers.IntegerField(
        allow_null=True, help_text="Exportable with names, country and zip; null: not matched on"
    )
    matchable = serializers.IntegerField(
        allow_null=True, help_text="Exportable with at least one identifier the platform matches"
    )
    estimated = serializers.BooleanField(help_text="Identifier counts estimated from a sample")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        default=list,
        help_text="Why an export may not work on the platform: below the matched people it "
        "needs to serve an audience, or many members with nothing it can match",
    )


class AudiencePreviewSerializer(serializers.Serializer):
    size = serializers.IntegerField(allow_null=True, help_text="Null when suppressed")
    display = serializers.CharField()
    suppressed = serializers.BooleanField(help_text="True below the minimum group size")
    at = serializers.DateTimeField(help_text="When consent was evaluated")
    formats = FormatReadinessSerializer(many=True)


class AudienceFiguresSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the figures were counted; null: never counted yet"
    )
    figures = AudiencePreviewSerializer(
        allow_null=True, source="preview", help_text="The last counted figures; null: none yet"
    )
    job = JobSerializer(
        allow_null=True,
        source="running_job",
        help_text="The count under way (poll /api/jobs/{id}/); null when none runs",
    )


class ExportSerializer(JobStatusSerializer):
    finished_at = serializers.DateTimeField(
        source="job.finished_at", read_only=True, allow_null=True
    )
    audience_name = serializers.CharField(source="audience.name", read_only=True)
    platform_label = serializers.CharField(source="get_platform_display", read_only=True)
    created_by = username_field()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id",
            *JobStatusSerializer.JOB_FIELDS,
            "audience",
            "audience_name",
            "platform",
            "platform_label",
            "row_count",
            "left_out",
            "file_size",
            "checksum",
            "consent_snapshot",
            "download_url",
            "created_by",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_download_url(self, export: Export) -> str | None:
        if export.job.status != Job.Status.SUCCEEDED or not export.file_path:
            return None
        return f"/api/exports/{export.pk}/download/"


class ExportCreateSerializer(serializers.Serializer):
    audience = serializers.PrimaryKeyRelatedField(queryset=Audience.objects.all())
    platform = serializers.ChoiceField(choices=PLATFORM_CHOICES)


class ExportFormatSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared DRF field
    platform = serializers.CharField()
    description = serializers.CharField()
    extension = serializers.CharField()
    content_type = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField())
    match_keys = serializers.ListField(
        child=serializers.ChoiceField(choices=MATCH_KEYS),
        help_text="Identifiers the platform matches on",
    )
    needs_google_consents = serializers.BooleanField(
        help_text="EEA/UK/Swiss members also need ad_user_data and ad_personalization"
    )


class LeftOutReasonSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared DRF field


class SuppressionSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.all(),
        validators=[
            UniqueValidator(
                Suppression.objects.all(),
                message="This customer is on the suppression list already.",
            )
        ],
    )
    pseudonym = serializers.CharField(source="customer.pseudonym", read_only=True)
    created_by = username_field()

    class Meta:
        model = Suppression
        fields = ["id", "customer", "pseudonym", "reason", "created_by", "created_at"]
        read_only_fields = ["created_at"]


# ---- filters ----------------------------------------------------------------------------------


class AudienceFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Audience
        fields = ["status", "segment", "scoring_run"]


class ExportFilter(filters.FilterSet):
    status = filters.ChoiceFilter(field_name="job__status", choices=Job.Status.choices)
    platform = filters.ChoiceFilter(choices=PLATFORM_CHOICES)

    class Meta:
        model = Export
        fields = ["audience"]


# ---- examples ---------------------------------------------------------------------------------

CREATE_EXAMPLE = OpenApiExample(
    "Top 10% of a segment by model score",
    value={
        "name": "Savers · top 10%",
        "segment": 3,
        "scoring_run": 7,
        "cut": "top_percent",
        "cut_value": 10,
    },
    request_only=True,
)
PREVIEW_EXAMPLE = OpenApiExample(
    "Readiness for Google and Meta",
    value={
        "size": 1200,
        "display": "1,200",
        "suppressed": False,
        "at": "2026-03-01T09:30:00Z",
        "formats": [
            {
                "format": "google_customer_match",
                "label": "Google Customer Match (CSV)",
                "platform": "Google Ads",
                "exportable": 950,
                "left_out": {
                    "no_record": 120,
                    "denied": 30,
                    "withdrawn": 40,
                    "expired": 20,
                    "suppressed": 10,
                    "google_consent": 30,
                },
                "email": 930,
                "phone": 610,
                "address": 480,
                "matchable": 945,
                "estimated": False,
            }
        ],
    },
    response_only=True,
)
FIGURES_EXAMPLE = OpenApiExample(
    "Counted an hour ago, no count under way",
    value={
        "computed_at": "2026-03-01T09:30:00Z",
        "figures": PREVIEW_EXAMPLE.value,
        "job": None,
    },
    response_only=True,
)
EXPORT_EXAMPLE = OpenApiExample(
    "Export started",
    value={
        "id": 12,
        "job": 88,
        "status": "queued",
        "progress": 0,
        "message": "Waiting for a worker",
        "audience": 5,
        "audience_name": "Savers · top 10%",
        "platform": "meta_custom_audience",
        "platform_label": "Meta Custom Audience (API payload)",
        "row_count": 0,
        "left_out": {},
        "file_size": 0,
        "checksum": "",
        "consent_snapshot": {},
        "download_url": None,
        "created_by": "mara",
        "created_at": "2026-03-01T09:31:00Z",
        "finished_at": None,
    },
    response_only=True,
)

# ---- views ------------------------------------------------------------------------------------


class AudienceViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Audiences: a segment cut by model score, frozen into members, then exported."""

    queryset = audiences()
    serializer_class = AudienceSerializer
    filterset_class = AudienceFilter
    search_fields = ["name", "segment_name"]
    ordering_fields = ["created_at", "frozen_at", "size", "id"]
    read_roles = ALL_ROLES
    write_roles = (MARKETER,)

    @extend_schema(
        request=AudienceCreateSerializer,
        responses={201: AudienceSerializer, 400: INVALID},
        examples=[CREATE_EXAMPLE],
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        """A draft audience; freeze it to fix its members."""
        data = AudienceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        audience = audience_create(
            name=data.validated_data["name"],
            **data.definition(),
            control_percent=data.validated_data["control_percent"],
            control_seed=data.validated_data["control_seed"],
            by=request.user,
        )
        return Response(self._one(audience.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AudienceResultsRequestSerializer, responses={202: JobSerializer, 400: INVALID}
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def results(self, request: Request, pk: str | None = None) -> Response:
        """Start measuring the results of a frozen audience with a control group, as a job:
        its contacted members against the control group, responses to the offer after the
        freeze. 202 with the job (the one under way, when there is one); poll
        /api/jobs/{id}/, then read the audience's ``results``."""
        data = AudienceResultsRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = audience_results_start(
            audience=self.get_object(), **data.validated_data, by=request.user
        )
        return Response(
            JobSerializer(job, context=self.get_serializer_context()).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=None, responses={202: JobSerializer, 400: INVALID})
    @action(detail=True, methods=["post"], filter_backends=[])
    def freeze(self, request: Request, pk: str | None = None) -> Response:
        """Start writing who is in the audience now (and why), with the consent snapshot, as
        a job: 202 with the job (the freeze under way, when one is); poll /api/jobs/{id}/,
        then read the audience."""
        job = audience_freeze_start(audience=self.get_object(), by=request.user)
        return Response(
            JobSerializer(job, context=self.get_serializer_context()).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        request=AudiencePreviewRequestSerializer,
        responses={200: AudiencePreviewSerializer, 400: INVALID},
        examples=[PREVIEW_EXAMPLE],
    )
    @action(
        detail=False,
        methods=["post"],
        write_roles=ALL_ROLES,
        filter_backends=[],
        pagination_class=None,
    )
    def preview(self, request: Request) -> Response:
        """Live size, consent and match readiness of an unsaved definition: counted on a
        small base, estimated from a bounded sample of customers on a large one (``estimated``
        on each format); the saved audience is counted exactly by a job."""
        data = AudiencePreviewRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        definition = data.definition()
        segment = definition.pop("segment")
        preview = audience_preview_estimate(
            rules=segment.rules, **definition, formats=data.validated_data.get("platforms")
        )
        return Response(AudiencePreviewSerializer(preview).data)

    @extend_schema(
        methods=["GET"],
        parameters=[
            OpenApiParameter(
                "platform",
                OpenApiTypes.STR,
                many=True,
                enum=list(FORMATS),
                description="Formats to show (repeatable); every format when left out",
            )
        ],
        responses={200: AudienceFiguresSerializer, 400: INVALID},
        examples=[FIGURES_EXAMPLE],
    )
    @extend_schema(
        methods=["POST"],
        operation_id="audiences_preview_recount",
        request=None,
        responses={202: AudienceFiguresSerializer},
        description="Start counting the figures again (a job; the count under way when one "
        "is): 202 with the last figures and the job. Marketers only.",
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="preview",
        url_name="readiness",
        filter_backends=[],
        pagination_class=None,
    )
    def readiness(self, request: Request, pk: str | None = None) -> Response:
        """The last counted consent and match readiness of the audience's members (of the
        definition while it is a draft), when they were counted, and the count under way.
        Counting is a job: POST starts one."""
        audience = self.get_object()
        platforms = request.query_params.getlist("platform")
        unknown = [p for p in platforms if p not in FORMATS]
        if unknown:
            raise ValidationError({"platform": f"Unknown format(s): {', '.join(unknown)}"})
        answer: int = status.HTTP_200_OK
        if request.method == "POST":
            audience_figures_refresh(audience=audience, by=request.user)
            answer = status.HTTP_202_ACCEPTED
        figures = audience_figures(audience, formats=platforms or None)
        data = AudienceFiguresSerializer(figures, context=self.get_serializer_context()).data
        return Response(data, status=answer)

    def _one(self, pk: int) -> dict[str, Any]:
        return AudienceSerializer(audiences().get(pk=pk)).data


class DownloadRenderer(renderers.BaseRenderer):
    """Lets a client ask for the file's type; error bodies are still JSON."""

    media_type = "*/*"
    format = "download"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return renderers.JSONRenderer().render(data)


@extend_schema_view(
    list=extend_schema(description="Every export, newest first; anyone may list them."),
    retrieve=extend_schema(description="One export with its job status, counts and checksum."),
)
class ExportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Exports of frozen audiences to ad platforms, each made by a Job."""

    queryset = exports()
    serializer_class = ExportSerializer
    filterset_class = ExportFilter
    ordering_fields = ["created_at", "row_count", "id"]
    read_roles = ALL_ROLES
    write_roles = (MARKETER,)

    def get_throttles(self):
        if self.action in ("create", "download"):
            return [ExportThrottle()]
        return []

    @extend_schema(
        request=ExportCreateSerializer,
        responses={202: ExportSerializer, 400: INVALID, 429: THROTTLED},
        examples=[
            OpenApiExample(
                "Meta payload",
                value={"audience": 5, "platform": "meta_custom_audience"},
                request_only=True,
            ),
            EXPORT_EXAMPLE,
        ],
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        """Start an export job; poll the export (or its job) until it succeeds."""
        data = ExportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        export = export_create(**data.validated_data, by=request.user)
        return Response(ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="A CSV file"),
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.BINARY, description="Meta payloads, one per line"
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.BINARY, description="A JSON array of pseudonyms and scores"
            ),
            403: OpenApiResponse(DetailSerializer, description="Viewers cannot download"),
            404: OpenApiResponse(DetailSerializer, description="No such export or no file"),
            429: THROTTLED,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        read_roles=DOWNLOADERS,
        filter_backends=[],
        renderer_classes=[renderers.JSONRenderer, DownloadRenderer],
    )
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        """The export's file, streamed; every download is recorded in the audit log. The
        ``X-Checksum-SHA256`` header repeats the checksum recorded when it was written."""
        export = self.get_object()
        file, name = export_download(export=export, by=request.user)
        return export_attachment(export, file, filename=name)

    @extend_schema(responses=ExportFormatSerializer(many=True))
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def formats(self, request: Request) -> Response:
        """The platform formats an audience can be exported in."""
        rows = [
            {**vars(fmt), "columns": list(fmt.columns), "match_keys": list(fmt.match_keys)}
            for fmt in FORMATS.values()
        ]
        return Response(ExportFormatSerializer(rows, many=True).data)

    @extend_schema(responses=LeftOutReasonSerializer(many=True))
    @action(
        detail=False,
        methods=["get"],
        url_path="left-out-reasons",
        filter_backends=[],
        pagination_class=None,
    )
    def left_out_reasons(self, request: Request) -> Response:
        """What each key of an export's ``left_out`` counts means."""
        rows = [{"key": key, "label": label} for key, label in LEFT_OUT_REASONS.items()]
        return Response(LeftOutReasonSerializer(rows, many=True).data)


class SuppressionViewSet(
    mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Customers never to be exported to an ad platform; data stewards keep the list."""

    queryset = Suppression.objects.select_related("customer", "created_by")
    serializer_class = SuppressionSerializer
    filterset_fields = ["customer"]
    ordering_fields = ["created_at", "id"]
    read_roles = DOWNLOADERS
    write_roles = (DATA_STEWARD,)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = suppression_add(
            customer=data["customer"], reason=data.get("reason", ""), by=self.request.user
        )

    def perform_destroy(self, instance: Suppression) -> None:
        suppression_remove(suppression=instance, by=self.request.user)
