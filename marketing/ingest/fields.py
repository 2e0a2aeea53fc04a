"""What each kind of upload can fill in, and the column mapping: guessed, then checked."""

import re
from dataclasses import dataclass

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, gettext_noop, pgettext

from marketing.ingest import IngestError
from marketing.ingest.wording import (
    BAD_ATTRIBUTE_NAME,
    CONSENT_LABEL,
    MAPPED_TWICE,
    MAPPING_PROBLEMS,
    NO_SUCH_COLUMN,
    NOT_A_FIELD,
    REQUIRED_UNMAPPED,
    format_html_message,
    translated,
)
from marketing.models import Purpose
from marketing.stored_texts import english

ATTRIBUTE_PREFIX = "attr:"
CONSENT_PREFIX = "consent_"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str  # in English, as row problems and the API say it: see ``display_label``
    required: bool = False
    # text, number, boolean, date, datetime, email, phone, country, consent, money or choice.
    data_type: str = "text"
    # Other header spellings that mean this field (compared without case, spaces, _ - or .).
    synonyms: tuple[str, ...] = ()

    @property
    def display_label(self) -> str:
        """The label in the active language, for a page."""
        return translated(self.label)


def _consent_fields() -> list[FieldSpec]:
    fields = [
        FieldSpec(
            f"{CONSENT_PREFIX}{purpose.value}",
            CONSENT_LABEL % {"purpose": english(purpose.label)},
            data_type="consent",
            synonyms=(f"{purpose.value}_consent", purpose.value),
        )
        for purpose in Purpose
    ]
    return fields + [
        FieldSpec(
            "consent_date",
            gettext_noop("Consent date"),
            data_type="datetime",
            synonyms=("consent_at", "consent_given_at", "consented_at", "consent_timestamp"),
        ),
        FieldSpec(
            "consent_expires",
            gettext_noop("Consent expires"),
            data_type="datetime",
            synonyms=("consent_expires_at", "consent_expiry", "consent_valid_until"),
        ),
        FieldSpec(
            "notice_version",
            gettext_noop("Privacy notice version"),
            synonyms=("privacy_notice_version", "privacy_notice", "notice"),
        ),
    ]


TARGET_FIELDS: dict[str, list[FieldSpec]] = {
    "customers": [
        FieldSpec(
            "external_id",
            gettext_noop("Customer ID"),
            required=True,
            synonyms=(
                "customer_id",
                "client_id",
                "id",
                "customer_number",
                "customer_no",
                "cust_id",
                "customer",
                "client",
                "user_id",
                "member_id",
                "account_id",
            ),
        ),
        FieldSpec(
            "email",
            gettext_noop("Email"),
            data_type="email",
            synonyms=("e-mail", "email_address", "mail"),
        ),
        FieldSpec(
            "phone",
            gettext_noop("Phone"),
            data_type="phone",
            synonyms=("phone_number", "telephone", "tel", "mobile", "mobile_phone", "cell"),
        ),
        FieldSpec(
            "first_name",
            gettext_noop("First name"),
            synonyms=("firstname", "given_name", "forename"),
        ),
        FieldSpec(
            "last_name", gettext_noop("Last name"), synonyms=("lastname", "surname", "family_name")
        ),
        FieldSpec(
            "country",
            gettext_noop("Country"),
            data_type="country",
            synonyms=("country_code", "country_iso"),
        ),
        FieldSpec(
            "postal_code",
            gettext_noop("Postal code"),
            synonyms=("postcode", "post_code", "zip", "zipcode", "zip_code", "plz"),
        ),
        *_consent_fields(),
    ],
    "offers": [
        FieldSpec(
            "external_id",
            gettext_noop("Offer ID"),
            required=True,
            synonyms=("offer_id", "product_id", "item_id", "sku", "id", "code"),
        ),
        FieldSpec(
            "title",
            gettext_noop("Title"),
            required=True,
            synonyms=("name", "offer_name", "product_name", "offer", "product"),
        ),
        FieldSpec("category", gettext_noop("Category"), synonyms=("product_category", "type")),
        FieldSpec("description", gettext_noop("Description"), synonyms=("desc", "details")),
        FieldSpec(
            "price", gettext_noop("Price"), data_type="money", synonyms=("list_price", "unit_price")
        ),
        FieldSpec(
            "unit_cost", gettext_noop("Unit cost"), data_type="money", synonyms=("cost", "cogs")
        ),
    ],
    "interactions": [
        FieldSpec(
            "customer_external_id",
            gettext_noop("Customer ID"),
            required=True,
            synonyms=("customer_id", "client_id", "customer", "user_id", "external_id"),
        ),
        FieldSpec(
            "offer_external_id",
            gettext_noop("Offer ID"),
            required=True,
            synonyms=("offer_id", "product_id", "item_id", "sku", "offer", "product"),
        ),
        FieldSpec(
            "kind",
            gettext_noop("Kind (impression, click, conversion)"),
            required=True,
            data_type="choice",
            synonyms=("type", "event", "event_type", "interaction", "action"),
        ),
        FieldSpec(
            "occurred_at",
            gettext_noop("When"),
            required=True,
            data_type="datetime",
            synonyms=(
                "timestamp",
                "date",
                "time",
                "datetime",
                "event_time",
                "created_at",
                "occurred",
            ),
        ),
        FieldSpec(
            "value", gettext_noop("Value"), data_type="money", synonyms=("amount", "revenue")
        ),
        FieldSpec("campaign", gettext_noop("Campaign"), synonyms=("campaign_name", "utm_campaign")),
    ],
}

KINDS = tuple(TARGET_FIELDS)


def normalise_header(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.casefold())


def attribute_name(header: str) -> str:
    """The profile attribute key for a column: "Emp.Var Rate" -> "emp_var_rate"."""
    return re.sub(r"[^0-9a-z]+", "_", header.casefold()).strip("_")[:64]


# The first columns of an upload's error file, before the row's own cells: a corrected error
# file uploaded again is read without them.
ERROR_FILE_LEAD = ("problem_row", "problem_line", "problems")


def guess_mapping(kind: str, headers: list[str]) -> dict[str, str]:
    """Target field -> header ("" when no header fits). For customers every other header
    becomes a profile attribute ("attr:<name>"). An error file's own columns are left out."""
    if tuple(headers[: len(ERROR_FILE_LEAD)]) == ERROR_FILE_LEAD:
        headers = headers[len(ERROR_FILE_LEAD) :]
    by_norm: dict[str, str] = {}
    for header in headers:
        by_norm.setdefault(normalise_header(header), header)
    used: set[str] = set()
    mapping: dict[str, str] = {}
    for spec in TARGET_FIELDS[kind]:
        mapping[spec.name] = ""
        for candidate in (spec.name, *spec.synonyms):
            found = by_norm.get(normalise_header(candidate))
            if found is not None and found not in used:
                mapping[spec.name] = found
                used.add(found)
                break
    if kind == "customers":
        for position, header in enumerate(headers, start=1):
            if header in used:
                continue
            name = attribute_name(header) or f"column_{position}"
            while f"{ATTRIBUTE_PREFIX}{name}" in mapping:
                name = f"{name[:60]}_{position}"
            mapping[f"{ATTRIBUTE_PREFIX}{name}"] = header
    return mapping


_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def clean_mapping(kind: str, mapping: dict[str, str], headers: list[str]) -> dict[str, str]:
    """Check a mapping against the file's headers; returns it with every target present."""
    specs = {spec.name: spec for spec in TARGET_FIELDS[kind]}
    problems: list[str] = []
    cleaned: dict[str, str] = dict.fromkeys(specs, "")
    mapped_by: dict[str, str] = {}
    for target, header in mapping.items():
        header = (header or "").strip()
        if target.startswith(ATTRIBUTE_PREFIX) and kind == "customers":
            name = target[len(ATTRIBUTE_PREFIX) :]
            if not _ATTRIBUTE_NAME.fullmatch(name):
                problems.append(BAD_ATTRIBUTE_NAME % {"name": name})
                continue
            if not header:
                continue
        elif target not in specs:
            problems.append(NOT_A_FIELD % {"target": target, "kind": kind})
            continue
        if not header:
            continue
        if header not in headers:
            problems.append(NO_SUCH_COLUMN % {"header": header, "target": target})
            continue
        if header in mapped_by:
            problems.append(
                MAPPED_TWICE % {"header": header, "other": mapped_by[header], "target": target}
            )
            continue
        mapped_by[header] = target
        cleaned[target] = header
    for spec in specs.values():
        if spec.required and not cleaned[spec.name]:
            problems.append(REQUIRED_UNMAPPED % {"label": spec.label, "name": spec.name})
    if problems:
        raise IngestError(MAPPING_PROBLEMS % {"problems": "; ".join(problems)})
    return cleaned


def required_fields(kind: str) -> list[FieldSpec]:
    return [spec for spec in TARGET_FIELDS[kind] if spec.required]


def accepted_values(kind: str) -> list[tuple[str, SafeString]]:
    """(what, the values accepted) for the upload page, in the active language, read from the
    parsers' own tables, so the page says exactly what an import takes. The words a file must
    hold as they are may be set apart as code."""
    from collections import defaultdict

    from marketing.ingest.rows import INTERACTION_KINDS
    from marketing.ingest.values import CONSENT_WORDS, FALSE_WORDS, NULL_TOKENS, TRUE_WORDS

    def code(text: str) -> SafeString:
        return format_html_message("<code>%(text)s</code>", text=text)

    def grouped(words: dict[str, str]) -> SafeString:
        others: dict[str, list[str]] = defaultdict(list)
        for word, value in words.items():
            if word != value:
                others[value].append(word)
        parts = [
            format_html_message(
                gettext("%(value)s (also %(others)s)"),
                value=value,
                others=", ".join(sorted(others[value])),
            )
            if others[value]
            else code(value)
            for value in dict.fromkeys(words.values())
        ]
        return mark_safe(conditional_escape(pgettext("list separator", "; ")).join(parts))

    common = [
        (
            gettext("Ids"),
            format_html_message(
                gettext(
                    "Up to 128 characters, unique within the file; the same id updates the record."
                )
            ),
        ),
        (
            gettext("Dates"),
            format_html_message(
                gettext(
                    "%(date)s or %(datetime)s (ISO 8601); a time without a zone is read in the "
                    "site's time zone."
                ),
                date=code("YYYY-MM-DD"),
                datetime=code("YYYY-MM-DD HH:MM"),
            ),
        ),
        (
            gettext("Empty values"),
            format_html_message(
                gettext("A blank cell, or %(tokens)s in number, yes/no and date columns."),
                tokens=code(", ".join(sorted(NULL_TOKENS))),
            ),
        ),
    ]
    if kind == "customers":
        return [
            *common,
            (
                gettext("Consent columns"),
                format_html_message(
                    gettext("%(values)s. A blank cell records nothing."),
                    values=grouped(CONSENT_WORDS),
                ),
            ),
            (
                gettext("Yes/no attributes"),
                format_html_message(
                    "%(true)s / %(false)s",
                    true=code(", ".join(sorted(TRUE_WORDS))),
                    false=code(", ".join(sorted(FALSE_WORDS))),
                ),
            ),
            (
                gettext("Numbers"),
                format_html_message(
                    gettext(
                        "A dot for decimals, no thousands separator: 1234.5. Codes with a "
                        "leading zero stay text."
                    )
                ),
            ),
            (
                gettext("Phone numbers"),
                format_html_message(
                    gettext(
                        "International (+44 7123 456789, 0044 7123 456789) or national in the "
                        "row's country ((415) 555-0103 with country US); stored as "
                        "+14155550103."
                    )
                ),
            ),
            (
                gettext("Countries"),
                format_html_message(
                    gettext("ISO codes (DE, DEU) or English names (Germany); stored as DE.")
                ),
            ),
        ]
    if kind == "interactions":
        return [
            *common,
            (
                gettext("Kinds"),
                format_html_message(gettext("%(values)s."), values=grouped(INTERACTION_KINDS)),
            ),
            (
                gettext("Customer and offer"),
                format_html_message(gettext("The ids of customers and offers uploaded before.")),
            ),
        ]
    return [
        *common,
        (
            gettext("Prices"),
            format_html_message(gettext("A dot for decimals, no thousands separator: 19.99.")),
        ),
    ]
