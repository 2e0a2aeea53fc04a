"""API for explanations: start the global importance of a model or one customer's explanation,
then read the status, progress and the numbers behind the charts."""

from typing import TYPE_CHECKING, Any, TypedDict

from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.api.common import RunSerializer
from marketing.models import Customer, ExplanationRun, Job
from marketing.roles import ALL_ROLES, MARKETER
from marketing.selectors.explanations import explanation_runs
from marketing.selectors.training import finished_training_runs, training_runs
from marketing.services.explanations import (
    DEFAULT_SAMPLE_SIZE,
    SAMPLE_LIMITS,
    explanation_run_create,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _ProfilingConsent(TypedDict):
    profiling_consent: bool  # annotated by selectors.explanations.explanation_runs


# ---- serializers ------------------------------------------------------------------------------


class FieldContributionSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Column name in the uploaded data")
    label = serializers.CharField(help_text="The field's name for people")  # type: ignore[assignment]  # a declared DRF field
    value = serializers.JSONField(help_text="The customer's value (null when missing)")
    contribution = serializers.FloatField(help_text="Push on the log-odds, relative to the base")


class FieldImportanceSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared DRF field
    mean_abs = serializers.FloatField(help_text="Mean |contribution| in log-odds over the sample")


class ModelExplanationSerializer(serializers.Serializer):
    """One model's numbers. Global scope: fields, rows, seconds. Customer scope: base value,
    logit, probabilities and contributions (base_value + sum of contributions = logit)."""

    method = serializers.CharField(help_text="permutation (BERT), tree or linear (baseline)")
    local_accuracy_error = serializers.FloatField(
        help_text="Largest |base + contributions - model logit| (log-odds)"
    )
    fields = FieldImportanceSerializer(  # type: ignore[assignment]  # a declared DRF field
        many=True, required=False, help_text="Global: most important first"
    )
    rows = serializers.IntegerField(required=False, help_text="Global: customers explained")
    seconds = serializers.FloatField(required=False)
    base_value = serializers.FloatField(
        required=False, help_text="Customer: log-odds of a typical customer"
    )
    base_probability = serializers.FloatField(required=False)
    logit = serializers.FloatField(required=False, help_text="Customer: the model's log-odds")
    probability = serializers.FloatField(required=False)
    tolerance = serializers.FloatField(required=False)
    contributions = FieldContributionSerializer(
        many=True, required=False, help_text="Customer: largest first"
    )


class OfferRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class ExplanationResultSerializer(serializers.Serializer):
    bert = ModelExplanationSerializer()
    baseline = ModelExplanationSerializer()
    offer = OfferRefSerializer(
        required=False, help_text="A multi-offer model is explained for this offer"
    )


class ExplanationRunSerializer(RunSerializer):
    result = serializers.SerializerMethodField(
        help_text="The numbers behind the charts, once succeeded; null before, and null for a "
        "customer who has no valid profiling consent now"
    )

    class Meta:
        model = ExplanationRun
        fields = [
            "id",
            *RunSerializer.JOB_FIELDS,
            "training_run",
            "scope",
            "customer",
            "sample_size",
            "background_size",
            "result",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ExplanationResultSerializer(allow_null=True))
    def get_result(
        self, run: "WithAnnotations[ExplanationRun, _ProfilingConsent]"
    ) -> dict[str, Any] | None:
        if run.job.status != Job.Status.SUCCEEDED or not run.result:
            return None
        if run.customer_id is not None and not run.profiling_consent:
            return None
        return run.result


class GlobalExplanationCreateSerializer(serializers.Serializer):
    sample_size = serializers.IntegerField(
        min_value=SAMPLE_LIMITS[0],
        max_value=SAMPLE_LIMITS[1],
        default=DEFAULT_SAMPLE_SIZE,
        help_text="Customers (with a valid profiling consent) explained for the importance",
    )


class CustomerExplanationCreateSerializer(serializers.Serializer):
    training_run = serializers.PrimaryKeyRelatedField(
        queryset=finished_training_runs(), help_text="The finished model whose score is explained"
    )


# ---- views ------------------------------------------------------------------------------------


class ExplanationRunFilter(filters.FilterSet):
    status = filters.ChoiceFilter(field_name="job__status", choices=Job.Status.choices)

    class Meta:
        model = ExplanationRun
        fields = ["training_run", "customer", "scope"]


class ExplanationRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Explanations of click models: status, progress and, once finished, the numbers."""

    queryset = ExplanationRun.objects.none()  # for the schema; get_queryset reads consent now
    serializer_class = ExplanationRunSerializer
    filterset_class = ExplanationRunFilter
    ordering_fields = ["created_at", "id"]
    read_roles = ALL_ROLES

    def get_queryset(self):
        return explanation_runs()


def _created(run: ExplanationRun) -> Response:
    run = explanation_runs().get(pk=run.pk)
    return Response(ExplanationRunSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunExplanationView(APIView):
    """Start the global importance of a model's fields (BERT and the baseline)."""

    write_roles = (MARKETER,)

    @extend_schema(
        request=GlobalExplanationCreateSerializer,
        responses={
            201: ExplanationRunSerializer,
            400: OpenApiResponse(
                description="The training has not finished, or the sample is out of range"
            ),
        },
        operation_id="training_runs_explanations_create",
    )
    def post(self, request: Request, pk: int) -> Response:
        run = get_object_or_404(training_runs(), pk=pk)
        data = GlobalExplanationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        explanation = explanation_run_create(
            training_run=run,
            scope=ExplanationRun.Scope.GLOBAL,
            sample_size=data.validated_data["sample_size"],
            by=request.user,
        )
        return _created(explanation)


class CustomerExplanationView(APIView):
    """Start the explanation of one customer's score by a finished model."""

    write_roles = (MARKETER,)

    @extend_schema(
        request=CustomerExplanationCreateSerializer,
        responses={
            201: ExplanationRunSerializer,
            400: OpenApiResponse(
                description="No valid profiling consent, or the model is not finished"
            ),
        },
        operation_id="customers_explanations_create",
    )
    def post(self, request: Request, pk: int) -> Response:
        customer = get_object_or_404(Customer, pk=pk)
        data = CustomerExplanationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        explanation = explanation_run_create(
            training_run=data.validated_data["training_run"],
            scope=ExplanationRun.Scope.CUSTOMER,
            customer=customer,
            by=request.user,
        )
        return _created(explanation)
