"""API for segments: rules, counts (hidden below the minimum group size) and the fields the
rule builder offers."""

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from marketing import filters
from marketing.api.common import INVALID, username_field
from marketing.api.jobs import JobSerializer
from marketing.models import Segment
from marketing.roles import ALL_ROLES, MARKETER
from marketing.segments import SegmentRuleError, available_fields, compile_rules
from marketing.selectors.figures import segment_figures
from marketing.selectors.segments import segment_count_preview
from marketing.services.figures import segment_figures_refresh
from marketing.services.segments import segment_create, segment_delete, segment_update


class SegmentSerializer(serializers.ModelSerializer):
    created_by = username_field()

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


class SegmentFieldSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared DRF field
    group = serializers.CharField()
    type = serializers.CharField()
    operators = serializers.ListField(child=serializers.CharField())
    values = serializers.ListField(child=serializers.JSONField())
    options = serializers.ListField(child=serializers.CharField(), required=False)


class SegmentViewSet(viewsets.ModelViewSet):
    queryset = Segment.objects.select_related("created_by")
    serializer_class = SegmentSerializer
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

    @extend_schema(methods=["GET"], responses={200: SegmentCountSerializer})
    @extend_schema(
        methods=["POST"],
        request=None,
        responses={202: SegmentCountSerializer},
        description="Start counting the segment again (a job; the count under way when one "
        "is): 202 with the last count and the job. Marketers only.",
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def count(self, request: Request, pk: str | None = None) -> Response:
        """The segment's last count (hidden below the minimum group size), when it was made,
        and the count under way; counting is a job, started by each change of the rules."""
        segment = self.get_object()
        answer: int = status.HTTP_200_OK
        if request.method == "POST":
            segment_figures_refresh(segment=segment, by=request.user)
            answer = status.HTTP_202_ACCEPTED
        figures = segment_figures(segment)
        data = {**figures, **figures["count"], "job": figures["running_job"]}
        context = self.get_serializer_context()
        return Response(SegmentCountSerializer(data, context=context).data, status=answer)

    @extend_schema(
        request=RulesSerializer,
        responses={200: CountPreviewSerializer, 400: INVALID},
    )
    @action(detail=False, methods=["post"], write_roles=ALL_ROLES, filter_backends=[])
    def preview(self, request: Request) -> Response:
        """Live count for unsaved rules, estimated from a bounded sample of customers on a
        large base (``estimated``); a bad rule is a 400 naming the rule."""
        data = RulesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._preview(data.validated_data["rules"])

    @extend_schema(responses=SegmentFieldSerializer(many=True))
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def fields(self, request: Request) -> Response:
        """The fields, operators and sample values the rule builder offers."""
        return Response(SegmentFieldSerializer(available_fields(), many=True).data)

    def _preview(self, rules) -> Response:
        preview = segment_count_preview(rules)
        return Response(CountPreviewSerializer(preview).data)
