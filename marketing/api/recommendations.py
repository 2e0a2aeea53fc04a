"""API for recommendations (offer lists re-ranked for diversity, with their metrics and the
accuracy-vs-diversity curve) and the audience diversity of a single-offer scoring run."""

from typing import Any

from django.db.models import Model
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.api.common import RunSerializer, RunViewSet
from marketing.api.jobs import JobSerializer
from marketing.models import Customer, Job, RecommendationRun, ScoringRun
from marketing.roles import ALL_ROLES
from marketing.selectors.figures import audience_diversity_figures
from marketing.selectors.recommendations import customer_list, recommendation_runs
from marketing.selectors.training import scoring_runs
from marketing.services.audience_diversity import audience_diversity_settings
from marketing.services.figures import audience_diversity_refresh
from marketing.services.recommendations import (
    MAX_K,
    MIN_K,
    SIMILARITIES,
    recommendation_run_create,
)

# ---- serializers ------------------------------------------------------------------------------


class ListMetricsSerializer(serializers.Serializer):
    k = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True, help_text="Precision@k on the clicks")
    recall = serializers.FloatField(allow_null=True, help_text="Recall@k on the clicks")
    ndcg = serializers.FloatField(allow_null=True, help_text="NDCG@k on the clicks")
    customers_evaluated = serializers.IntegerField(
        help_text="Customers with at least one click the accuracy averages over"
    )
    mean_score = serializers.FloatField(help_text="Mean model score of the listed offers")
    intra_list_diversity = serializers.FloatField(
        allow_null=True, help_text="Mean dissimilarity of two offers in a list"
    )
    coverage = serializers.FloatField(help_text="Share of offers in at least one list")
    gini = serializers.FloatField(help_text="Gini coefficient of customers per offer")
    novelty = serializers.FloatField(
        allow_null=True, help_text="Mean -log2 popularity of the listed offers"
    )


class CurvePointSerializer(ListMetricsSerializer):
    mmr_lambda = serializers.FloatField(help_text="Diversity weight of this point")
    seconds = serializers.FloatField(help_text="Seconds the re-ranking took")


class ExposureSerializer(serializers.Serializer):
    offer = serializers.IntegerField()
    title = serializers.CharField()
    category = serializers.CharField(allow_blank=True)
    customers = serializers.IntegerField(help_text="Customers the offer is recommended to")


class RecommendationRunSerializer(RunSerializer):
    class Meta:
        model = RecommendationRun
        fields = [
            "id",
            *RunSerializer.JOB_FIELDS,
            "scoring_run",
            "k",
            "diversity",
            "offer_cap",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class RecommendationRunDetailSerializer(RecommendationRunSerializer):
    metrics = serializers.SerializerMethodField()
    curve = serializers.SerializerMethodField()
    exposure = serializers.SerializerMethodField()
    accuracy_basis = serializers.SerializerMethodField(
        help_text="held_out (clicks after the training data was read), all_clicks (none after "
        "it, so every recorded click) or none (no clicks: mean_score is the accuracy measure)"
    )
    similarity = serializers.SerializerMethodField(
        help_text="How offers were compared: categories or text"
    )
    result = serializers.JSONField(
        read_only=True, help_text="Everything the job measured (also the fields above)"
    )

    class Meta(RecommendationRunSerializer.Meta):
        fields = [
            *RecommendationRunSerializer.Meta.fields,
            "similarity",
            "accuracy_basis",
            "metrics",
            "curve",
            "exposure",
            "result",
        ]
        read_only_fields = fields

    @extend_schema_field(ListMetricsSerializer(allow_null=True))
    def get_metrics(self, run: RecommendationRun) -> dict[str, Any] | None:
        return (run.result or {}).get("metrics")

    @extend_schema_field(CurvePointSerializer(many=True))
    def get_curve(self, run: RecommendationRun) -> list[dict[str, Any]]:
        return (run.result or {}).get("curve") or []

    @extend_schema_field(ExposureSerializer(many=True))
    def get_exposure(self, run: RecommendationRun) -> list[dict[str, Any]]:
        return (run.result or {}).get("exposure") or []

    @extend_schema_field(serializers.CharField())
    def get_similarity(self, run: RecommendationRun) -> str:
        return run.job.params.get("similarity", "categories")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_accuracy_basis(self, run: RecommendationRun) -> str | None:
        return (run.result or {}).get("accuracy_basis")


class RecommendationRunCreateSerializer(serializers.Serializer):
    scoring_run = serializers.PrimaryKeyRelatedField(
        queryset=ScoringRun.objects.all(), help_text="A finished multi-offer scoring run"
    )
    k = serializers.IntegerField(
        min_value=MIN_K, max_value=MAX_K, default=5, help_text="Offers per customer"
    )
    diversity = serializers.FloatField(
        min_value=0.0,
        max_value=1.0,
        default=0.0,
        help_text="MMR weight: 0 = best scores only, higher = more varied lists",
    )
    offer_cap = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        default=None,
        help_text="Customers per offer at most",
    )
    similarity = serializers.ChoiceField(
        choices=[(key, text) for key, text in SIMILARITIES.items()],
        default="categories",
        help_text="How offers are compared: categories (shared category tags) or text "
        "(sentence-encoder vectors of title, category and description)",
    )


class ListedOfferSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    offer_id = serializers.IntegerField()
    title = serializers.CharField()
    category = serializers.CharField(allow_blank=True)
    score = serializers.FloatField()


class CustomerListSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    pseudonym = serializers.CharField()
    offers = ListedOfferSerializer(many=True)


class GroupShareSerializer(serializers.Serializer):
    group = serializers.CharField()
    base_count = serializers.IntegerField()
    base_share = serializers.FloatField()
    audience_count = serializers.IntegerField()
    audience_share = serializers.FloatField()
    ratio = serializers.FloatField(help_text="audience_share / base_share")
    flag = serializers.CharField(
        allow_blank=True, help_text="left out, under-represented, over-represented or ''"
    )


class AttributeSpreadSerializer(serializers.Serializer):
    attribute = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared DRF field
    kind = serializers.CharField(help_text="categorical or numeric (quantile bins)")
    groups = GroupShareSerializer(many=True)
    hidden_groups = serializers.IntegerField(help_text="Groups under MIN_GROUP_SIZE, not shown")
    js_divergence = serializers.FloatField()
    total_variation = serializers.FloatField()
    under_represented = serializers.ListField(child=serializers.CharField())
    left_out = serializers.ListField(child=serializers.CharField())


class FindingSerializer(serializers.Serializer):
    attribute = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared DRF field
    group = serializers.CharField()
    flag = serializers.CharField()
    ratio = serializers.FloatField()
    text = serializers.CharField(help_text="The finding in words")


class AudienceDiversitySerializer(serializers.Serializer):
    base_size = serializers.IntegerField(help_text="Scored customers with profiling consent")
    audience_size = serializers.IntegerField()
    score_cutoff = serializers.FloatField(help_text="Lowest score in the top")
    top_label = serializers.CharField()
    top_n = serializers.IntegerField(allow_null=True)
    top_share = serializers.FloatField(allow_null=True)
    seconds = serializers.FloatField()
    min_group_size = serializers.IntegerField()
    attributes = AttributeSpreadSerializer(many=True)
    under_represented = FindingSerializer(many=True)


class AudienceDiversityFiguresSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the figures were computed; null: never yet"
    )
    figures = AudienceDiversitySerializer(
        allow_null=True, source="report", help_text="The last computed figures; null: none yet"
    )
    job = JobSerializer(
        allow_null=True,
        source="running_job",
        help_text="The computation under way (poll /api/jobs/{id}/); null when none runs",
    )
    error = serializers.CharField(
        allow_null=True, help_text="Why the last computation failed; null unless it did"
    )


class AudienceDiversityRequestSerializer(serializers.Serializer):
    top = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=100,
        help_text="Audience as a percentage of the base (default 10)",
    )
    top_n = serializers.IntegerField(
        required=False, min_value=1, help_text="Audience as a number of customers (wins over top)"
    )
    attributes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Attribute names to compare (default: every attribute)",
    )


# ---- views ------------------------------------------------------------------------------------


class RecommendationRunFilter(filters.FilterSet):
    status = filters.ChoiceFilter(field_name="job__status", choices=Job.Status.choices)

    class Meta:
        model = RecommendationRun
        fields = ["scoring_run"]


@extend_schema_view(
    create=extend_schema(
        request=RecommendationRunCreateSerializer,
        responses={
            201: RecommendationRunDetailSerializer,
            400: OpenApiResponse(
                description="A single-offer or unfinished scoring run, or a setting out of range"
            ),
        },
    )
)
class RecommendationRunViewSet(RunViewSet):
    """Offer lists per customer from a multi-offer scoring run; creating one starts a Job."""

    queryset = recommendation_runs()
    serializer_class = RecommendationRunDetailSerializer
    list_serializer_class = RecommendationRunSerializer
    create_serializer_class = RecommendationRunCreateSerializer
    filterset_class = RecommendationRunFilter

    def start(self, values: dict[str, Any], *, by: Any) -> Model:
        return recommendation_run_create(**values, by=by)

    @extend_schema(
        responses={
            200: CustomerListSerializer,
            403: OpenApiResponse(description="The customer has no valid profiling consent now"),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"customers/(?P<customer_id>[0-9]+)",
        filter_backends=[],
        pagination_class=None,
    )
    def customer(
        self, request: Request, pk: str | None = None, customer_id: str | None = None
    ) -> Response:
        """One customer's list in this run, best first."""
        run = self.get_object()
        customer = get_object_or_404(Customer, pk=customer_id)
        items = customer_list(run, customer)
        if items is None:
            raise PermissionDenied(
                "This customer has no valid profiling consent now; their recommendations may "
                "not be used."
            )
        return Response({"customer": customer.pk, "pseudonym": customer.pseudonym, "offers": items})


class AudienceDiversityView(APIView):
    """How the top customers of a single-offer scoring run spread over profile attributes,
    compared with every scored customer; under-represented and left-out groups in words.
    Computing reads every score of the run, so it is a job: POST starts one, GET reads the
    last figures, their age and the job under way."""

    read_roles = ALL_ROLES

    @extend_schema(
        responses={
            200: AudienceDiversityFiguresSerializer,
            400: OpenApiResponse(description="A multi-offer or unfinished scoring run"),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        scoring = get_object_or_404(scoring_runs(), pk=pk)
        audience_diversity_settings(scoring_run=scoring)
        return self._answer(scoring, status.HTTP_200_OK)

    @extend_schema(
        request=AudienceDiversityRequestSerializer,
        responses={
            202: AudienceDiversityFiguresSerializer,
            400: OpenApiResponse(description="A multi-offer or unfinished run, or a bad setting"),
        },
        description="Start computing the audience diversity for these settings (a job; the "
        "computation under way when one is, whatever its settings): 202 with the last figures "
        "and the job. Marketers only.",
    )
    def post(self, request: Request, pk: int) -> Response:
        scoring = get_object_or_404(scoring_runs(), pk=pk)
        data = AudienceDiversityRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        top_n = values.get("top_n")
        audience_diversity_refresh(
            scoring_run=scoring,
            top_n=top_n,
            top_share=None if top_n else values.get("top", 10.0) / 100,
            attributes=values.get("attributes") or None,
            by=request.user,
        )
        return self._answer(scoring, status.HTTP_202_ACCEPTED)

    def _answer(self, scoring: ScoringRun, answer: int) -> Response:
        figures = audience_diversity_figures(scoring)
        failed = figures["failed_job"]
        data = {**figures, "error": failed.message if failed is not None else None}
        context = {"request": self.request}
        return Response(AudienceDiversityFiguresSerializer(data, context=context).data, answer)
