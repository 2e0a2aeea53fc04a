"""Uploads over the API: create (multipart), map, preview, import, download the errors.

Every step calls the ingest services; their ``IngestError`` becomes a 400 with its message.
Preview samples and error values from columns mapped to personal identifiers are masked for
users without the PII permission, like everywhere else.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from marketing import filters
from marketing.api.common import INVALID, THROTTLED, DetailSerializer, username_field
from marketing.api.jobs import JobSerializer
from marketing.models import Upload
from marketing.models.uploads import UPLOAD_FIELDS
from marketing.responses import csv_attachment
from marketing.roles import DATA_STEWARD, MARKETER
from marketing.selectors.uploads import error_file_for_user, preview_for_user
from marketing.services.ingest import (
    upload_create,
    upload_import,
    upload_preview,
    upload_set_mapping,
)
from marketing.throttles import ExportThrottle

UPLOADERS = (MARKETER, DATA_STEWARD)


class UploadSerializer(serializers.ModelSerializer):
    created_by = username_field()
    has_error_file = serializers.SerializerMethodField()

    class Meta:
        model = Upload
        fields = ["id", *UPLOAD_FIELDS, "has_error_file", "created_by", "created_at"]
        read_only_fields = fields

    def get_has_error_file(self, upload: Upload) -> bool:
        return bool(upload.error_file)


class UploadCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Upload.Kind.choices)
    # Empty files reach the ingest service, which explains the problem in its own words.
    file = serializers.FileField(allow_empty_file=True)
    encoding = serializers.CharField(
        required=False, allow_blank=True, help_text="e.g. utf-8, latin-1; detected when empty"
    )


class UploadMappingSerializer(serializers.Serializer):
    mapping = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text='Target field -> column header ("" leaves it unmapped); '
        '"attr:<name>" keeps a column as a profile attribute',
    )
    mode = serializers.ChoiceField(choices=Upload.Mode.choices)


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Data row, the header not counted")
    line = serializers.IntegerField(help_text="Line of the file, the header being line 1")
    column = serializers.CharField()
    value = serializers.CharField(
        help_text="The cell as written; masked when it is from a "
        "column of personal identifiers and `masked` is true"
    )
    masked = serializers.BooleanField()
    reason = serializers.CharField()
    message = serializers.CharField()


class UploadPreviewSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    valid = serializers.IntegerField()
    invalid = serializers.IntegerField()
    errors = RowErrorSerializer(many=True)  # type: ignore[assignment]  # a declared DRF field
    sample = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
    new = serializers.IntegerField()
    updates = serializers.IntegerField()


class CSVFileRenderer(BaseRenderer):
    """Lets a client ask for ``text/csv``; the file itself is streamed as it is stored."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return str(data.get("detail", "") if isinstance(data, dict) else data).encode()


class UploadViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """CSV uploads for marketers and data stewards."""

    queryset = Upload.objects.select_related("created_by")
    serializer_class = UploadSerializer
    filterset_class = filters.UploadFilter
    ordering_fields = ["created_at", "id"]
    read_roles = UPLOADERS
    write_roles = UPLOADERS

    @extend_schema(
        request={"multipart/form-data": UploadCreateSerializer},
        responses={201: UploadSerializer, 400: INVALID},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        data = UploadCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = upload_create(
            kind=data.validated_data["kind"],
            file=data.validated_data["file"],
            encoding=data.validated_data.get("encoding") or None,
            by=request.user,
        )
        return Response(UploadSerializer(upload).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UploadMappingSerializer, responses={200: UploadSerializer, 400: INVALID})
    @action(detail=True, methods=["post"], filter_backends=[])
    def mapping(self, request: Request, pk: str | None = None) -> Response:
        """Set the column mapping and the import mode ("all or nothing" or "valid rows")."""
        upload = self.get_object()
        data = UploadMappingSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = upload_set_mapping(upload=upload, by=request.user, **data.validated_data)
        return Response(UploadSerializer(upload).data)

    @extend_schema(responses={200: UploadPreviewSerializer, 400: DetailSerializer})
    @action(detail=True, methods=["get"], filter_backends=[])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """A dry run with the current mapping: counts, the first errors and sample rows."""
        upload = self.get_object()
        preview = upload_preview(upload=upload)
        preview = preview_for_user(preview, upload, request.user)
        return Response(UploadPreviewSerializer(preview).data)

    @extend_schema(request=None, responses={202: JobSerializer, 400: DetailSerializer})
    @action(detail=True, methods=["post"], url_path="import", url_name="import", filter_backends=[])
    def start_import(self, request: Request, pk: str | None = None) -> Response:
        """Start the import; follow it at ``/api/jobs/<id>/``."""
        job = upload_import(upload=self.get_object(), by=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="Every invalid row once: problem_row, problem_line, problems (in "
                "words), then the row's cells as uploaded; correct them and upload the file "
                "again (these three columns are skipped)",
            ),
            404: DetailSerializer,
            429: THROTTLED,
        }
    )
    @action(
        detail=True,
        methods=["get"],
        filter_backends=[],
        renderer_classes=[JSONRenderer, CSVFileRenderer],
        throttle_classes=[ExportThrottle],
    )
    def errors(self, request: Request, pk: str | None = None):
        """Download every row problem of the last preview or import as CSV."""
        upload = self.get_object()
        if not upload.error_file:
            return Response(
                {"detail": "This upload has no error file."}, status=status.HTTP_404_NOT_FOUND
            )
        return csv_attachment(
            error_file_for_user(upload, request.user), filename=f"upload-{upload.pk}-errors.csv"
        )
