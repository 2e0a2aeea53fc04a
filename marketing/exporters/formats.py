"""The export formats on offer, one entry per file a platform accepts."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from django.utils.translation import gettext_lazy as _

from marketing.exporters import generic, google, meta, tiktok
from marketing.exporters.base import Member, Readiness, WriteResult

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class Writer(Protocol):
    def __call__(
        self, members: Iterable[Member], out: TextIO, *, result: WriteResult | None = None
    ) -> WriteResult: ...


# Kinds of identifier a platform matches on (see ``Readiness``).
MATCH_KEYS = ("email", "phone", "address")


@dataclass(frozen=True)
class ExportFormat:
    key: str
    # What pages call the format (translatable; the files themselves stay English).
    label: "StrOrPromise"
    # The platform's name as settings and code know it (``PLATFORM_MIN_MATCHED``); pages show
    # ``platform_label(platform)``.
    platform: str
    description: str
    extension: str
    content_type: str
    write: Writer
    # None: the format carries no identifier to match on (pseudonym and score only).
    readiness: Callable[[Member], Readiness] | None
    # The MATCH_KEYS the platform matches on.
    match_keys: tuple[str, ...] = ()
    # Whether Google's EU user consent policy applies (ad_user_data + ad_personalization).
    needs_google_consents: bool = False
    # Header row of a CSV, or the schema of a payload.
    columns: tuple[str, ...] = ()


GOOGLE_CUSTOMER_MATCH = "google_customer_match"
META_CUSTOM_AUDIENCE = "meta_custom_audience"
META_CUSTOM_AUDIENCE_CSV = "meta_custom_audience_csv"
TIKTOK_CUSTOMER_FILE = "tiktok_customer_file"
GENERIC_CSV = "generic_csv"
GENERIC_JSON = "generic_json"

FORMATS: dict[str, ExportFormat] = {
    f.key: f
    for f in (
        ExportFormat(
            key=GOOGLE_CUSTOMER_MATCH,
            label=_("Google Customer Match (CSV)"),
            platform="Google Ads",
            description="Hashed email, phone and names with plain country and zip; customers "
            "in the EEA, UK and Switzerland need ad_user_data and "
            "ad_personalization consent.",
            extension="csv",
            content_type="text/csv",
            write=google.write,
            readiness=google.readiness,
            match_keys=MATCH_KEYS,
            needs_google_consents=True,
            columns=tuple(google.HEADERS),
        ),
        ExportFormat(
            key=META_CUSTOM_AUDIENCE,
            label=_("Meta Custom Audience (API payload)"),
            platform="Meta",
            description="JSON Lines: one {schema, data} request body of at most 10,000 rows per "
            "line; EXTERN_ID is the pseudonym, everything else hashed.",
            extension="jsonl",
            content_type="application/x-ndjson",
            write=meta.write_payload,
            readiness=meta.readiness,
            match_keys=MATCH_KEYS,
            columns=tuple(meta.SCHEMA),
        ),
        ExportFormat(
            key=META_CUSTOM_AUDIENCE_CSV,
            label=_("Meta Custom Audience (CSV)"),
            platform="Meta",
            description="The Ads Manager customer list with hashed identifiers.",
            extension="csv",
            content_type="text/csv",
            write=meta.write_csv,
            readiness=meta.readiness,
            match_keys=MATCH_KEYS,
            columns=tuple(meta.CSV_HEADERS),
        ),
        ExportFormat(
            key=TIKTOK_CUSTOMER_FILE,
            label=_("TikTok customer file (CSV)"),
            platform="TikTok",
            description="SHA-256 of email and phone, one column each.",
            extension="csv",
            content_type="text/csv",
            write=tiktok.write,
            readiness=tiktok.readiness,
            match_keys=("email", "phone"),
            columns=tuple(tiktok.HEADERS),
        ),
        ExportFormat(
            key=GENERIC_CSV,
            label=_("Pseudonyms and scores (CSV)"),
            platform="Other systems",
            description="Pseudonym and frozen score; no personal identifiers.",
            extension="csv",
            content_type="text/csv",
            write=generic.write_csv,
            readiness=None,
            columns=tuple(generic.CSV_HEADERS),
        ),
        ExportFormat(
            key=GENERIC_JSON,
            label=_("Pseudonyms and scores (JSON)"),
            platform="Other systems",
            description="A JSON array of {pseudonym, score}; no personal identifiers.",
            extension="json",
            content_type="application/json",
            write=generic.write_json,
            readiness=None,
            columns=tuple(generic.CSV_HEADERS),
        ),
    )
}
PLATFORM_CHOICES = [(key, fmt.label) for key, fmt in FORMATS.items()]
# The platforms' names as pages show them (Meta and TikTok are the same in every language).
PLATFORM_LABELS = {
    "Google Ads": _("Google Ads"),
    "Other systems": _("Other systems"),
}


def platform_label(platform: str) -> str:
    """A platform's name as pages show it, in the active language."""
    return str(PLATFORM_LABELS.get(platform, platform))
