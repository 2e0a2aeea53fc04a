"""HTTP responses the pages and the API both send."""

from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from django.http import FileResponse, StreamingHttpResponse

from marketing.exporters.formats import FORMATS

if TYPE_CHECKING:
    from marketing.models import Export


def csv_attachment(
    content: IO[bytes] | Iterator[str], *, filename: str
) -> FileResponse | StreamingHttpResponse:
    """A CSV download: a file is served as it is, rows made on the fly are streamed."""
    if hasattr(content, "read"):
        return FileResponse(content, as_attachment=True, filename=filename, content_type="text/csv")
    response = StreamingHttpResponse(content, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_attachment(export: "Export", file: IO[bytes], *, filename: str) -> FileResponse:
    """An export's file in its platform's type; ``X-Checksum-SHA256`` repeats the checksum
    recorded when it was written."""
    response = FileResponse(
        file,
        as_attachment=True,
        filename=filename,
        content_type=FORMATS[export.platform].content_type,
    )
    response["X-Checksum-SHA256"] = export.checksum
    return response
