"""API for jobs: long operations with live progress, and cancelling them."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from marketing import filters
from marketing.api.common import JOB_ERROR_HELP, DetailSerializer, job_error, username_field
from marketing.models import Job
from marketing.roles import ALL_ROLES, MARKETER, has_role
from marketing.selectors.jobs import job_outlook
from marketing.services.jobs import job_cancel


class JobSerializer(serializers.ModelSerializer):
    created_by = username_field()
    is_finished = serializers.BooleanField(read_only=True)
    error = serializers.SerializerMethodField(help_text=JOB_ERROR_HELP)

    outlook = serializers.SerializerMethodField(
        help_text="One job's read only (null in lists): what is ahead of it in the queue, or "
        "about how long it has left at the pace of its progress."
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, job: Job) -> str | None:
        return job_error(job, self.context)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_outlook(self, job: Job) -> str | None:
        view = self.context.get("view")
        if getattr(view, "action", None) not in ("retrieve", "cancel"):
            return None
        return job_outlook(job).text

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "title",
            "status",
            "progress",
            "message",
            "params",
            "result",
            "error",
            "outlook",
            "cancel_requested",
            "is_finished",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Long operations with live progress; pages poll the detail endpoint."""

    queryset = Job.objects.select_related("created_by")
    serializer_class = JobSerializer
    filterset_class = filters.JobFilter
    ordering_fields = ["created_at", "finished_at", "id"]
    read_roles = ALL_ROLES
    write_roles = (MARKETER,)

    @extend_schema(
        request=None,
        responses={
            200: JobSerializer,
            403: OpenApiResponse(
                DetailSerializer, description="Only the job's creator or a marketer may cancel"
            ),
        },
    )
    @action(detail=True, methods=["post"], write_roles=ALL_ROLES, filter_backends=[])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        if job.created_by_id != request.user.pk and not has_role(request.user, (MARKETER,)):
            raise PermissionDenied("Only the job's creator or a marketer may cancel it.")
        return Response(self.get_serializer(job_cancel(job=job, by=request.user)).data)
