"""What every API module shares: the related-row and user fields, the job status fields of a
row that a Job fills in, the base viewset of runs and the documented error answers."""

from collections.abc import Mapping
from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from marketing.models import Job
from marketing.roles import ALL_ROLES, DATA_STEWARD, MARKETER

STEWARDS = (DATA_STEWARD,)


def optional_pk(queryset: QuerySet, *, help_text: str) -> serializers.PrimaryKeyRelatedField:
    """A related row the request may leave out or send as null; both give ``None``."""
    return serializers.PrimaryKeyRelatedField(
        queryset=queryset, required=False, allow_null=True, default=None, help_text=help_text
    )


def username_field() -> serializers.SlugRelatedField:
    """Who did it, by username (null once the user is deleted)."""
    return serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)


JOB_ERROR_HELP = (
    "The failure in full with the kind of error, for staff users only (others read "
    "`message`); tracebacks go to the server log, never here"
)


def job_error(job: Job, context: Mapping[str, Any]) -> str | None:
    """A job's error as the API shows it: the kind of error names the server's internals, so
    only the admin console's (staff) users read it."""
    request = context.get("request")
    return job.error if request is not None and request.user.is_staff else None


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# A 400 from a service ({"detail"}) or from a serializer's field checks ({field: [...]}).
INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='What is wrong: {"detail": message} or {field: [messages, ...]}',
    examples=[
        OpenApiExample("Definition", value={"detail": "A cut by score needs a scoring run."}),
        OpenApiExample("Field", value={"segment": ['Invalid pk "99" - object does not exist.']}),
    ],
)

THROTTLED = OpenApiResponse(DetailSerializer, description="Too many export requests; retry later")


# A row that a Job fills in, with the job's status, progress and message. No docstring: the
# schema would show it on every subclass.
class JobStatusSerializer(serializers.ModelSerializer):
    # In the order the API shows them, after the row's id.
    JOB_FIELDS = ["job", "status", "progress", "message"]

    status = serializers.ChoiceField(
        source="job.status", choices=Job.Status.choices, read_only=True
    )
    progress = serializers.IntegerField(source="job.progress", read_only=True)
    message = serializers.CharField(source="job.message", read_only=True)


# A run (training, scoring, explanation, recommendations): its job's status and error, and
# who started it.
class RunSerializer(JobStatusSerializer):
    JOB_FIELDS = [*JobStatusSerializer.JOB_FIELDS, "error"]

    error = serializers.SerializerMethodField(help_text=JOB_ERROR_HELP)
    created_by = username_field()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, run: Any) -> str | None:
        return job_error(run.job, self.context)


class RunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Runs that every role reads and marketers start: ``serializer_class`` shows one run,
    ``list_serializer_class`` a page of them, ``create_serializer_class`` takes a new one."""

    serializer_class: type[serializers.Serializer]
    create_serializer_class: type[serializers.Serializer]
    list_serializer_class: type[serializers.Serializer]
    ordering_fields = ["created_at", "id"]
    read_roles = ALL_ROLES
    write_roles = (MARKETER,)

    def get_serializer_class(self):
        if self.action == "create":
            return self.create_serializer_class
        if self.action == "list":
            return self.list_serializer_class
        return self.serializer_class

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = self.create_serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        run = self.start(data.validated_data, by=request.user)
        shown = self.get_queryset().get(pk=run.pk)
        context = self.get_serializer_context()
        return Response(
            self.serializer_class(shown, context=context).data, status=status.HTTP_201_CREATED
        )

    def start(self, values: dict[str, Any], *, by: Any) -> Model:
        """Create the run through its service (which queues the job) from checked values."""
        raise NotImplementedError
