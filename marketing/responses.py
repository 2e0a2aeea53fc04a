"""HTTP responses the pages and the API both send."""

from collections.abc import Iterator
from typing import IO

from django.http import FileResponse, StreamingHttpResponse


def csv_attachment(
    content: IO[bytes] | Iterator[str], *, filename: str
) -> FileResponse | StreamingHttpResponse:
    """A CSV download: a file is served as it is, rows made on the fly are streamed."""
    if hasattr(content, "read"):
        return FileResponse(content, as_attachment=True, filename=filename, content_type="text/csv")
    response = StreamingHttpResponse(content, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
