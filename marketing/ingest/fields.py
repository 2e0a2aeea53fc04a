"""What each kind of upload can fill in, and the column mapping: guessed, then checked."""

import re
from dataclasses import dataclass

from marketing.ingest import IngestError
from marketing.models import Purpose

ATTRIBUTE_PREFIX = "attr:"
CONSENT_PREFIX = "consent_"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    required: bool = False
    # text, number, boolean, date, datetime, email, phone, country, consent, money or choice.
    data_type: str = "text"
    # Other header spellings that mean this field (compared without case, spaces, _ - or .).
    synonyms: tuple[str, ...] = ()


def _consent_fields() -> list[FieldSpec]:
    fields = [
        FieldSpec(
            f"{CONSENT_PREFIX}{purpose.value}",
            f"Consent: {purpose.label}",
            data_type="consent",
            synonyms=(f"{purpose.value}_consent", purpose.value),
        )
        for purpose in Purpose
    ]
    return fields + [
        FieldSpec(
            "consent_date",
            "Consent date",
            data_type="datetime",
            synonyms=("consent_at", "consent_given_at", "consented_at", "consent_timestamp"),
        ),
        FieldSpec(
            "consent_expires",
            "Consent expires",
            data_type="datetime",
            synonyms=("consent_expires_at", "consent_expiry", "consent_valid_until"),
        ),
        FieldSpec(
            "notice_version",
            "Privacy notice version",
            synonyms=("privacy_notice_version", "privacy_notice", "notice"),
        ),
    ]


TARGET_FIELDS: dict[str, list[FieldSpec]] = {
    "customers": [
        FieldSpec(
            "external_id",
            "Customer ID",
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
            "email", "Email", data_type="email", synonyms=("e-mail", "email_address", "mail")
        ),
        FieldSpec(
            "phone",
            "Phone",
            data_type="phone",
            synonyms=("phone_number", "telephone", "tel", "mobile", "mobile_phone", "cell"),
        ),
        FieldSpec("first_name", "First name", synonyms=("firstname", "given_name", "forename")),
        FieldSpec("last_name", "Last name", synonyms=("lastname", "surname", "family_name")),
        FieldSpec(
            "country",
            "Country",
            data_type="country",
            synonyms=("country_code", "country_iso"),
        ),
        FieldSpec(
            "postal_code",
            "Postal code",
            synonyms=("postcode", "post_code", "zip", "zipcode", "zip_code", "plz"),
        ),
        *_consent_fields(),
    ],
    "offers": [
        FieldSpec(
            "external_id",
            "Offer ID",
            required=True,
            synonyms=("offer_id", "product_id", "item_id", "sku", "id", "code"),
        ),
        FieldSpec(
            "title",
            "Title",
            required=True,
            synonyms=("name", "offer_name", "product_name", "offer", "product"),
        ),
        FieldSpec("category", "Category", synonyms=("product_category", "type")),
        FieldSpec("description", "Description", synonyms=("desc", "details")),
        FieldSpec("price", "Price", data_type="money", synonyms=("list_price", "unit_price")),
        FieldSpec("unit_cost", "Unit cost", data_type="money", synonyms=("cost", "cogs")),
    ],
    "interactions": [
        FieldSpec(
            "customer_external_id",
            "Customer ID",
            required=True,
            synonyms=("customer_id", "client_id", "customer", "user_id", "external_id"),
        ),
        FieldSpec(
            "offer_external_id",
            "Offer ID",
            required=True,
            synonyms=("offer_id", "product_id", "item_id", "sku", "offer", "product"),
        ),
        FieldSpec(
            "kind",
            "Kind (impression, click, conversion)",
            required=True,
            data_type="choice",
            synonyms=("type", "event", "event_type", "interaction", "action"),
        ),
        FieldSpec(
            "occurred_at",
            "When",
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
        FieldSpec("value", "Value", data_type="money", synonyms=("amount", "revenue")),
        FieldSpec("campaign", "Campaign", synonyms=("campaign_name", "utm_campaign")),
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
                problems.append(
                    f"'{name}' cannot be a profile attribute name: use lower-case letters, "
                    "digits and _ (starting with a letter, at most 64 characters)"
                )
                continue
            if not header:
                continue
        elif target not in specs:
            problems.append(f"'{target}' is not a field of a {kind} upload")
            continue
        if not header:
            continue
        if header not in headers:
            problems.append(f"the file has no column named '{header}' (for {target})")
            continue
        if header in mapped_by:
            problems.append(f"column '{header}' is mapped twice ({mapped_by[header]} and {target})")
            continue
        mapped_by[header] = target
        cleaned[target] = header
    for spec in specs.values():
        if spec.required and not cleaned[spec.name]:
            problems.append(
                f"{spec.label} ({spec.name}) is required: choose the column that holds it"
            )
    if problems:
        raise IngestError("The column mapping has problems: " + "; ".join(problems) + ".")
    return cleaned


def required_fields(kind: str) -> list[FieldSpec]:
    return [spec for spec in TARGET_FIELDS[kind] if spec.required]


def accepted_values(kind: str) -> list[tuple[str, str]]:
    """(what, the values accepted) for the upload page, read from the parsers' own tables,
    so the page says exactly what an import takes."""
    from collections import defaultdict

    from marketing.ingest.rows import INTERACTION_KINDS
    from marketing.ingest.values import CONSENT_WORDS, FALSE_WORDS, NULL_TOKENS, TRUE_WORDS

    def grouped(words: dict[str, str]) -> str:
        others: dict[str, list[str]] = defaultdict(list)
        for word, value in words.items():
            if word != value:
                others[value].append(word)
        return "; ".join(
            value + (f" (also {', '.join(sorted(others[value]))})" if others[value] else "")
            for value in dict.fromkeys(words.values())
        )

    common = [
        ("Ids", "Up to 128 characters, unique within the file; the same id updates the record."),
        (
            "Dates",
            "YYYY-MM-DD or YYYY-MM-DD HH:MM (ISO 8601); a time without a zone is read in the "
            "site's time zone.",
        ),
        (
            "Empty values",
            "A blank cell, or "
            + ", ".join(sorted(NULL_TOKENS))
            + " in number, yes/no and date columns.",
        ),
    ]
    if kind == "customers":
        return [
            *common,
            ("Consent columns", grouped(CONSENT_WORDS) + ". A blank cell records nothing."),
            (
                "Yes/no attributes",
                ", ".join(sorted(TRUE_WORDS)) + " / " + ", ".join(sorted(FALSE_WORDS)),
            ),
            (
                "Numbers",
                "A dot for decimals, no thousands separator: 1234.5. Codes with a leading zero "
                "stay text.",
            ),
            (
                "Phone numbers",
                "International (+44 7123 456789, 0044 7123 456789) or national in the "
                "row's country ((415) 555-0103 with country US); stored as +14155550103.",
            ),
            ("Countries", "ISO codes (DE, DEU) or English names (Germany); stored as DE."),
        ]
    if kind == "interactions":
        return [
            *common,
            ("Kinds", grouped(INTERACTION_KINDS) + "."),
            ("Customer and offer", "The ids of customers and offers uploaded before."),
        ]
    return [*common, ("Prices", "A dot for decimals, no thousands separator: 19.99.")]
