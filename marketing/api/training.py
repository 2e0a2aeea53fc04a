"""API for click models: training runs, scoring runs and the scores, streamed as CSV or JSON."""

import json
from collections.abc import Iterator
from itertools import chain
from typing import Any

from django.db.models import Model
from django.http import StreamingHttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import renderers, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from marketing.api.common import THROTTLED, RunSerializer, RunViewSet, optional_pk
from marketing.exporters.csvsafe import csv_lines
from marketing.models import Job, Offer, ScoringRun, Segment, TrainingRun
from marketing.roles import can_link_customers
from marketing.selectors.training import export_rows, scoring_runs, training_runs
from marketing.services.champions import champion_or_error
from marketing.services.jobs import job_cancel
from marketing.services.scoring import (
    scores_download_log,
    scoring_run_create,
)
from marketing.services.training import training_run_create
from marketing.services.training_params import TrainParams, param_bounds
from marketing.throttles import ExportThrottle

# ---- serializers ------------------------------------------------------------------------------


class TestAucSerializer(serializers.Serializer):
    bert = serializers.FloatField(allow_null=True)
    baseline = serializers.FloatField(allow_null=True)


class TrainingRunSerializer(RunSerializer):
    test_auc = serializers.SerializerMethodField(
        help_text="Test ROC-AUC of the BERT model and the baseline (null until finished)"
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "name",
            *RunSerializer.JOB_FIELDS,
            "segment",
            "offer",
            "target",
            "base_model",
            "mode",
            "params",
            "test_auc",
            "model_id",
            "rows",
            "customers_used",
            "customers_excluded",
            "flagged_erasure",
            "erased_customers",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(TestAucSerializer)
    def get_test_auc(self, run: TrainingRun) -> dict[str, float | None]:
        metrics = run.metrics or {}
        return {key: (metrics.get(key) or {}).get("roc_auc") for key in ("bert", "baseline")}


class TrainingRunDetailSerializer(TrainingRunSerializer):
    class Meta(TrainingRunSerializer.Meta):
        fields = [
            *TrainingRunSerializer.Meta.fields,
            "metrics",
            "curves",
            "consent_snapshot",
            "fingerprint",
            "example_text",
            "settings",
            "leakage",
        ]
        read_only_fields = fields


class TrainingRunCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    segment = optional_pk(
        Segment.objects.all(), help_text="Customers to learn from; null = all customers"
    )
    offer = optional_pk(
        Offer.objects.all(),
        help_text="One offer (a campaign model); null = every offer (multi-offer model)",
    )
    target = serializers.ChoiceField(
        choices=TrainingRun.Target.choices, default=TrainingRun.Target.CONVERSION
    )
    base_model = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="One of the configured base models; empty = CLICK_MODEL_BASE",
    )
    mode = serializers.ChoiceField(choices=TrainingRun.Mode.choices, default=TrainingRun.Mode.LORA)
    epochs = serializers.IntegerField(
        required=False,
        allow_null=True,
        **param_bounds("epochs"),
        help_text="Passes at most; empty = picked for the time budget (early stopping decides)",
    )
    batch_size = serializers.IntegerField(required=False, **param_bounds("batch_size"))
    learning_rate = serializers.FloatField(
        required=False, allow_null=True, **param_bounds("learning_rate")
    )
    max_length = serializers.IntegerField(required=False, **param_bounds("max_length"))
    num_layers = serializers.IntegerField(
        required=False,
        allow_null=True,
        **param_bounds("num_layers"),
        help_text="Encoder layers kept; empty = picked for the time budget and hardware",
    )
    frozen_layers = serializers.IntegerField(
        required=False,
        allow_null=True,
        **param_bounds("frozen_layers"),
        help_text="Lowest layers frozen; empty = picked for the time budget and hardware",
    )
    max_rows = serializers.IntegerField(
        required=False,
        allow_null=True,
        **param_bounds("max_rows"),
        help_text="Training rows at most; empty = as many as the time budget allows",
    )
    max_test_rows = serializers.IntegerField(required=False, **param_bounds("max_test_rows"))
    time_budget_s = serializers.IntegerField(required=False, **param_bounds("time_budget_s"))
    patience = serializers.IntegerField(required=False, **param_bounds("patience"))
    seed = serializers.IntegerField(required=False, **param_bounds("seed"))
    keep_fields = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=200,
        help_text="Profile fields the leakage check flags that this run keeps knowingly",
    )

    PARAMS = [f for f in TrainParams.__dataclass_fields__ if f != "threads"]


class ScoringRunSerializer(RunSerializer):
    class Meta:
        model = ScoringRun
        fields = [
            "id",
            *RunSerializer.JOB_FIELDS,
            "training_run",
            "segment",
            "rows_scored",
            "customers_scored",
            "customers_excluded",
            "distribution",
            "scorer",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class ScoringRunCreateSerializer(serializers.Serializer):
    training_run = serializers.PrimaryKeyRelatedField(
        queryset=TrainingRun.objects.all(),
        required=False,
        help_text="The run whose model scores; leave it out to score with the model in use "
        "(the champion) of `use_case_offer` and `use_case_target`",
    )
    use_case_offer = optional_pk(
        Offer.objects.all(),
        help_text="Without training_run: the offer whose champion scores (null = the models "
        "of every offer)",
    )
    use_case_target = serializers.ChoiceField(
        choices=TrainingRun.Target.choices,
        default=TrainingRun.Target.CONVERSION,
        help_text="Without training_run: the target whose champion scores",
    )
    segment = optional_pk(
        Segment.objects.all(), help_text="Customers to score; null = all customers"
    )
    scorer = serializers.ChoiceField(
        choices=ScoringRun.Scorer.choices,
        default=ScoringRun.Scorer.SERVED,
        help_text="The served model, its int8 copy or the distilled fast path; the training "
        "run's metrics.scorers give each one's validation AUC and rows per second",
    )


class ScoreSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    external_id = serializers.CharField(
        required=False,
        help_text="The customer's id in your systems; marketers and data stewards only",
    )
    offer = serializers.CharField(allow_null=True, help_text="The offer's external id")
    score = serializers.FloatField(help_text="Predicted probability of the response")


# ---- filters ----------------------------------------------------------------------------------


class TrainingRunFilter(filters.FilterSet):
    status = filters.ChoiceFilter(field_name="job__status", choices=Job.Status.choices)

    class Meta:
        model = TrainingRun
        fields = ["segment", "offer", "target", "mode", "flagged_erasure"]


class ScoringRunFilter(filters.FilterSet):
    status = filters.ChoiceFilter(field_name="job__status", choices=Job.Status.choices)

    class Meta:
        model = ScoringRun
        fields = ["training_run", "segment"]


# ---- views ------------------------------------------------------------------------------------


class CSVRenderer(renderers.BaseRenderer):
    """Lets ``?format=csv`` through content negotiation; the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return b"" if data is None else json.dumps(data).encode()


@extend_schema_view(
    create=extend_schema(
        request=TrainingRunCreateSerializer,
        responses={
            201: TrainingRunDetailSerializer,
            400: OpenApiResponse(description="Unknown base model or a setting out of range"),
        },
    )
)
class TrainingRunViewSet(RunViewSet):
    """Click model training runs; creating one starts a training Job."""

    queryset = training_runs()
    serializer_class = TrainingRunDetailSerializer
    list_serializer_class = TrainingRunSerializer
    create_serializer_class = TrainingRunCreateSerializer
    filterset_class = TrainingRunFilter
    search_fields = ["name"]

    def start(self, values: dict[str, Any], *, by: Any) -> Model:
        return training_run_create(
            name=values["name"],
            segment=values["segment"],
            offer=values["offer"],
            target=values["target"],
            base_model=values["base_model"],
            mode=values["mode"],
            params={k: values[k] for k in TrainingRunCreateSerializer.PARAMS if k in values},
            by=by,
        )

    @extend_schema(request=None, responses=TrainingRunDetailSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop the training: a queued run at once, a running one at its next step."""
        run = self.get_object()
        job_cancel(job=run.job, by=request.user)
        run.job.refresh_from_db()
        return Response(TrainingRunDetailSerializer(run).data)


@extend_schema_view(
    create=extend_schema(
        request=ScoringRunCreateSerializer,
        responses={
            201: ScoringRunSerializer,
            400: OpenApiResponse(description="The training run has no finished model"),
        },
    )
)
class ScoringRunViewSet(RunViewSet):
    """Scores of a trained model for a segment; creating one starts a scoring Job."""

    queryset = scoring_runs()
    serializer_class = ScoringRunSerializer
    list_serializer_class = ScoringRunSerializer
    create_serializer_class = ScoringRunCreateSerializer
    filterset_class = ScoringRunFilter

    def start(self, values: dict[str, Any], *, by: Any) -> Model:
        offer, target = values.pop("use_case_offer", None), values.pop("use_case_target")
        if values.get("training_run") is None:
            values["training_run"] = champion_or_error(offer, target)
        return scoring_run_create(**values, by=by)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=["csv", "json"],
                description="csv (default) or json",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="pseudonym,external_id,offer,score rows (external_id for "
                "marketers and data stewards only)",
            ),
            (200, "application/json"): ScoreSerializer(many=True),
            429: THROTTLED,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        filter_backends=[],
        pagination_class=None,
        renderer_classes=[CSVRenderer, renderers.JSONRenderer],
        throttle_classes=[ExportThrottle],
    )
    def scores(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        """Every score of the run, highest first, by pseudonym and, for marketers and data
        stewards, the customer's external id (never other personal identifiers). Streamed, so
        it works for millions of customers."""
        scoring = self.get_object()
        as_json = request.accepted_renderer.format == "json"
        linked = can_link_customers(request.user)
        scores_download_log(
            scoring_run=scoring,
            by=request.user,
            file_format="json" if as_json else "csv",
            external_ids=linked,
        )
        body = _json_lines(scoring, linked) if as_json else _csv_lines(scoring, linked)
        response = StreamingHttpResponse(
            body, content_type="application/json" if as_json else "text/csv; charset=utf-8"
        )
        extension = "json" if as_json else "csv"
        response["Content-Disposition"] = f'attachment; filename="scores-{scoring.pk}.{extension}"'
        return response


def _csv_lines(scoring: ScoringRun, linked: bool) -> Iterator[str]:
    header = ("pseudonym", "external_id", "offer", "score") if linked else SCORE_COLUMNS
    rows = (
        (*row[:-2], row[-2] or "", f"{row[-1]:.6f}")
        for row in export_rows(scoring, external_ids=linked)
    )
    return csv_lines(chain([header], rows))


SCORE_COLUMNS = ("pseudonym", "offer", "score")


def _json_lines(scoring: ScoringRun, linked: bool) -> Iterator[str]:
    names = ("pseudonym", "external_id", "offer") if linked else ("pseudonym", "offer")
    yield "["
    separator = ""
    for row in export_rows(scoring, external_ids=linked):
        yield separator + json.dumps(
            {**dict(zip(names, row, strict=False)), "score": round(row[-1], 6)}
        )
        separator = ",\n"
    yield "]\n"
