"""API for campaign plans: the numbers behind every chart of the plan page (profit curve,
gains and lift, ROI table, forecast vs actual by decile, Qini and uplift by decile)."""

from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from marketing.api.common import optional_pk, username_field
from marketing.api.jobs import JobSerializer
from marketing.models import CampaignPlan, Offer, ScoringRun
from marketing.roles import ALL_ROLES, MARKETER
from marketing.selectors.plans import campaign_plans
from marketing.services.plans import (
    campaign_plan_actuals,
    campaign_plan_create,
    campaign_plan_update,
    campaign_plan_uplift,
)

# ---- what the plan JSON holds (for the schema; the service writes it) ------------------------


class EconomicsSerializer(serializers.Serializer):
    cost_per_contact = serializers.FloatField(help_text="Cost of contacting one customer")
    value_per_conversion = serializers.FloatField(
        help_text="Margin one conversion earns, before contact costs (above 0)"
    )
    fixed_cost = serializers.FloatField(
        required=False, default=0.0, help_text="Paid once if the campaign runs"
    )
    budget = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Most the campaign may cost; null = no limit",
    )


class DepthSerializer(serializers.Serializer):
    contacts = serializers.IntegerField()
    depth_pct = serializers.FloatField()
    expected_conversions = serializers.FloatField()
    revenue = serializers.FloatField()
    cost = serializers.FloatField()
    profit = serializers.FloatField()
    roi = serializers.FloatField(allow_null=True, help_text="profit / cost; null without cost")
    random_conversions = serializers.FloatField(required=False)
    random_profit = serializers.FloatField(required=False)
    profit_over_random = serializers.FloatField(required=False)
    lift = serializers.FloatField(required=False, allow_null=True)


class DecisionSerializer(DepthSerializer):
    worth_running = serializers.BooleanField(required=False)
    set_by = serializers.ChoiceField(
        choices=["best", "marketer"], required=False, help_text="Chosen depth only"
    )


class CurveSerializer(serializers.Serializer):
    """Arrays at every whole percent 1..100 (profit curve, gains and lift charts)."""

    depth_pct = serializers.ListField(child=serializers.FloatField())
    contacts = serializers.ListField(child=serializers.IntegerField())
    expected_conversions = serializers.ListField(child=serializers.FloatField())
    revenue = serializers.ListField(child=serializers.FloatField())
    cost = serializers.ListField(child=serializers.FloatField())
    profit = serializers.ListField(child=serializers.FloatField())
    roi = serializers.ListField(child=serializers.FloatField(allow_null=True))
    random_conversions = serializers.ListField(child=serializers.FloatField())
    random_profit = serializers.ListField(child=serializers.FloatField())
    lift = serializers.ListField(child=serializers.FloatField(allow_null=True))


class BudgetSerializer(serializers.Serializer):
    limit = serializers.FloatField(allow_null=True)
    max_contacts = serializers.IntegerField()
    max_depth_pct = serializers.FloatField()
    at_max_contacts = DepthSerializer()
    best_within_budget = DecisionSerializer()
    reason = serializers.CharField(allow_null=True)


class RandomSerializer(serializers.Serializer):
    best = DecisionSerializer()
    budget = BudgetSerializer()


class ConsentUseSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    at = serializers.DateTimeField()
    scores_in_run = serializers.IntegerField()
    used = serializers.IntegerField(help_text="Customers with a valid profiling consent")
    left_out = serializers.IntegerField(help_text="Scored customers without one")


class PlanResultSerializer(serializers.Serializer):
    kind = serializers.CharField()
    customers = serializers.IntegerField()
    base_rate = serializers.FloatField()
    economics = EconomicsSerializer()
    note = serializers.CharField()
    curve = CurveSerializer()
    table = DepthSerializer(many=True, help_text="Rows at 5, 10, 20, 30, 50 and 100 %")
    best = DecisionSerializer(help_text="The profit-maximising depth")
    budget = BudgetSerializer()
    random = RandomSerializer()
    chosen = DecisionSerializer(help_text="The marketer's depth, or the best one")
    consent = ConsentUseSerializer()


class ResultsSerializer(serializers.Serializer):
    conversions = serializers.FloatField()
    conversion_rate = serializers.FloatField()
    revenue = serializers.FloatField()
    cost = serializers.FloatField()
    profit = serializers.FloatField()
    roi = serializers.FloatField(allow_null=True)


class ForecastDecileSerializer(serializers.Serializer):
    decile = serializers.IntegerField()
    customers = serializers.IntegerField()
    forecast_rate = serializers.FloatField()
    actual_rate = serializers.FloatField()
    forecast_conversions = serializers.FloatField()
    actual_conversions = serializers.IntegerField()


class ActualSerializer(serializers.Serializer):
    """Empty until measured."""

    campaign = serializers.CharField(required=False)
    contacts = serializers.IntegerField(required=False)
    forecast = ResultsSerializer(required=False)
    actual = ResultsSerializer(required=False)
    difference = ResultsSerializer(required=False, help_text="actual − forecast")
    expected_conversions_range = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="95 % range of the forecast"
    )
    within_expected_range = serializers.BooleanField(required=False)
    deciles = ForecastDecileSerializer(many=True, required=False)
    left_out = serializers.IntegerField(
        required=False, help_text="Targeted, profiling consent no longer valid"
    )
    responders_outside_plan = serializers.IntegerField(required=False)
    conversions_with_value = serializers.IntegerField(required=False)
    conversions_without_value = serializers.IntegerField(required=False)
    measured_at = serializers.DateTimeField(required=False)


class UpliftDecileSerializer(serializers.Serializer):
    decile = serializers.IntegerField()
    customers = serializers.IntegerField()
    treated = serializers.IntegerField()
    control = serializers.IntegerField()
    predicted_uplift = serializers.FloatField()
    observed_uplift = serializers.FloatField(allow_null=True)


class UpliftEvaluationSerializer(serializers.Serializer):
    customers = serializers.IntegerField()
    depth_pct = serializers.ListField(child=serializers.FloatField())
    contacts = serializers.ListField(child=serializers.IntegerField())
    qini = serializers.ListField(child=serializers.FloatField())
    qini_random = serializers.ListField(child=serializers.FloatField())
    qini_coefficient = serializers.FloatField()
    deciles = UpliftDecileSerializer(many=True)


class UpliftSerializer(serializers.Serializer):
    """Empty until estimated; ``reasons`` says why when the data is insufficient."""

    status = serializers.ChoiceField(choices=["queued", "ok", "insufficient_data"], required=False)
    job = serializers.IntegerField(required=False)
    treatment_attribute = serializers.CharField(required=False)
    treatment_value = serializers.CharField(required=False)
    reasons = serializers.ListField(child=serializers.CharField(), required=False)
    evaluation = UpliftEvaluationSerializer(required=False)


# ---- plans ------------------------------------------------------------------------------------


class CampaignPlanSerializer(serializers.ModelSerializer):
    created_by = username_field()
    economics = EconomicsSerializer(read_only=True)
    best = serializers.SerializerMethodField()
    chosen = serializers.SerializerMethodField()

    class Meta:
        model = CampaignPlan
        fields = [
            "id",
            "name",
            "scoring_run",
            "offer",
            "economics",
            "contacts",
            "best",
            "chosen",
            "campaign",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(DecisionSerializer)
    def get_best(self, plan: CampaignPlan) -> dict[str, Any]:
        return plan.result.get("best", {})

    @extend_schema_field(DecisionSerializer)
    def get_chosen(self, plan: CampaignPlan) -> dict[str, Any]:
        return plan.result.get("chosen", {})


class CampaignPlanDetailSerializer(CampaignPlanSerializer):
    result = serializers.SerializerMethodField()
    actual = serializers.SerializerMethodField()
    uplift = serializers.SerializerMethodField()

    class Meta(CampaignPlanSerializer.Meta):
        fields = [*CampaignPlanSerializer.Meta.fields, "result", "actual", "uplift"]
        read_only_fields = fields

    @extend_schema_field(PlanResultSerializer)
    def get_result(self, plan: CampaignPlan) -> dict[str, Any]:
        return plan.result

    @extend_schema_field(ActualSerializer)
    def get_actual(self, plan: CampaignPlan) -> dict[str, Any]:
        return plan.actual

    @extend_schema_field(UpliftSerializer)
    def get_uplift(self, plan: CampaignPlan) -> dict[str, Any]:
        return plan.uplift


class CampaignPlanCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    scoring_run = serializers.PrimaryKeyRelatedField(queryset=ScoringRun.objects.all())
    offer = optional_pk(
        Offer.objects.all(), help_text="Needed for scores of every offer; null = the model's offer"
    )
    economics = serializers.DictField(
        help_text="cost_per_contact, value_per_conversion, "
        "fixed_cost (default 0), budget (null = no limit)"
    )
    contacts = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="Customers to contact; null = the best depth",
    )


class CampaignPlanUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    economics = serializers.DictField(required=False, help_text="As when creating")
    contacts = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Customers to contact; null = the best depth",
    )


class ActualsRequestSerializer(serializers.Serializer):
    campaign = serializers.CharField(
        max_length=100, help_text="The campaign name the responses were recorded under"
    )


class UpliftRequestSerializer(serializers.Serializer):
    treatment_attribute = serializers.CharField(
        max_length=64, help_text="Profile field marking the treated (contacted) customers"
    )
    treatment_value = serializers.CharField(
        max_length=100, help_text="Treated when the attribute equals this; the rest is control"
    )


class CampaignPlanFilter(filters.FilterSet):
    class Meta:
        model = CampaignPlan
        fields = ["scoring_run", "offer", "campaign"]


class CampaignPlanViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Campaign plans over a scoring run's scores: expected profit by targeting depth, the
    best and budget-limited depth, realised ROI and uplift. Only customers with a valid
    profiling consent are planned for."""

    queryset = campaign_plans()
    filterset_class = CampaignPlanFilter
    search_fields = ["name", "campaign"]
    ordering_fields = ["created_at", "id"]
    read_roles = ALL_ROLES
    write_roles = (MARKETER,)

    def get_serializer_class(self):
        return {
            "list": CampaignPlanSerializer,
            "create": CampaignPlanCreateSerializer,
            "update": CampaignPlanUpdateSerializer,
            "partial_update": CampaignPlanUpdateSerializer,
        }.get(self.action, CampaignPlanDetailSerializer)

    @extend_schema(
        request=CampaignPlanCreateSerializer,
        responses={
            201: CampaignPlanDetailSerializer,
            400: OpenApiResponse(description="Errors by field: economics, offer, scoring run"),
        },
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        data = CampaignPlanCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = campaign_plan_create(**data.validated_data, by=request.user)
        plan = self.get_queryset().get(pk=plan.pk)
        return Response(CampaignPlanDetailSerializer(plan).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CampaignPlanUpdateSerializer,
        responses={
            200: CampaignPlanDetailSerializer,
            400: OpenApiResponse(description="Errors by field"),
        },
    )
    def update(self, request: Request, *args, **kwargs) -> Response:
        """Re-plan with new economics and/or contacts (PUT and PATCH both change only what
        is given)."""
        plan = self.get_object()
        data = CampaignPlanUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = campaign_plan_update(plan=plan, by=request.user, **data.validated_data)
        return Response(CampaignPlanDetailSerializer(plan).data)

    @extend_schema(
        request=CampaignPlanUpdateSerializer,
        responses={
            200: CampaignPlanDetailSerializer,
            400: OpenApiResponse(description="Errors by field"),
        },
    )
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        return self.update(request, *args, **kwargs)

    @extend_schema(
        request=ActualsRequestSerializer,
        responses={
            200: CampaignPlanDetailSerializer,
            400: OpenApiResponse(description="No responses under that campaign name"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def actuals(self, request: Request, pk: str | None = None) -> Response:
        """Measure the targeted customers' actual responses under a campaign name."""
        plan = self.get_object()
        data = ActualsRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = campaign_plan_actuals(plan=plan, by=request.user, **data.validated_data)
        return Response(CampaignPlanDetailSerializer(plan).data)

    @extend_schema(
        request=UpliftRequestSerializer,
        responses={202: JobSerializer, 400: OpenApiResponse(description="Errors by field")},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def uplift(self, request: Request, pk: str | None = None) -> Response:
        """Start the two-model uplift estimate (a Job); the plan's ``uplift`` holds the result
        or why the data was insufficient once the job finished."""
        plan = self.get_object()
        data = UpliftRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = campaign_plan_uplift(plan=plan, by=request.user, **data.validated_data)
        job.refresh_from_db()
        return Response(
            JobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
        )
