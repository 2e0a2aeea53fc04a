"""CSV ingest building blocks: reading and sniffing files, the target fields and their
mapping, checking rows, and writing checked rows in bulk.

The public entry points are the services in ``marketing.services.ingest``; the demo loader
uses the same row checks and writers.

Row numbers in every message count data rows from 1, the header not included ("Row 17" is
the 17th customer); "line" is the line of the file where that row starts, the header being
line 1, which is what a spreadsheet shows as its row number.
"""

from marketing.errors import ApplicationError


class IngestError(ApplicationError):
    """A problem with an upload, worded for the person who uploaded it."""
