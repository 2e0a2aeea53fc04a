"""What the ingest says, made in English, and said again in the reader's language on a page.

Row problems, upload errors and import messages are made in English: they are stored (an
upload's summary, a job's message and result), written to error files, kept in the audit
trail and answered by the API, all of which keep English. A page translates them as it shows
them: ``translated_html`` (or ``translated`` for plain text) finds the message a text was
made from and gives it in the active language with its values put back, those that are
product words themselves (a field's label, a nested reason) translated in turn. A text it
does not know stays as it is.

Messages without values are marked with ``gettext_noop`` where they are made and are found in
the catalogue as they are. Messages with values are made from the templates below (``TEMPLATE
% {"name": value}``), which are matched back. A translation may set words apart as code
(``<code>%(value)s</code>``): words that a file must hold as they are, codes and formats;
``translated_html`` keeps that markup, with the values escaped and those that are data or
code (an uploaded value, a column's name, a field's code) marked ``translate="no"``.
"""

import re
from collections.abc import Callable
from functools import lru_cache
from html import unescape

from django.utils.html import conditional_escape, escape, strip_tags
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, gettext_noop, pgettext

from marketing.stored_texts import in_english

# ---------------------------------------------------------------- row problems
# A reason completes the sentence "'<value>' ..." (see marketing.ingest.values).

LONGER_THAN = gettext_noop("is longer than %(limit)s characters")
FIELD_COUNT = gettext_noop("has %(fields)s fields but the header has %(width)s")
EMPTY_REQUIRED = gettext_noop("is empty, but %(label)s is required")
REPEATS_CUSTOMER = gettext_noop("repeats the customer ID of row %(row)s (line %(line)s)")
REPEATS_OFFER = gettext_noop("repeats the offer ID of row %(row)s (line %(line)s)")
REPEATS_RESPONSE = gettext_noop(
    "repeats the same customer, offer, kind and time of row %(row)s (line %(line)s)"
)
# (dated, withdrawn) -> why an imported grant may not override a standing refusal: "given",
# the date of the grant, "date" the refusal's.
OVERRIDES = {
    (False, True): gettext_noop(
        "is undated, but the customer's withdrawal of %(date)s (source: %(source)s) "
        "stands: an import cannot grant consent over it. If the customer consented "
        "again, a data steward records that consent."
    ),
    (False, False): gettext_noop(
        "is undated, but the customer's denial of %(date)s (source: %(source)s) stands: "
        "an import cannot grant consent over it. If the customer consented again, a data "
        "steward records that consent."
    ),
    (True, True): gettext_noop(
        "is dated %(given)s, but the customer's withdrawal of %(date)s (source: "
        "%(source)s) stands: an import cannot grant consent over it. If the customer "
        "consented again, a data steward records that consent."
    ),
    (True, False): gettext_noop(
        "is dated %(given)s, but the customer's denial of %(date)s (source: %(source)s) "
        "stands: an import cannot grant consent over it. If the customer consented again, "
        "a data steward records that consent."
    ),
}
TOO_SHORT_IN = gettext_noop("is too short for a phone number in %(region)s")
TOO_LONG_IN = gettext_noop("is too long for a phone number in %(region)s")
LOCAL_IN = gettext_noop("is a local number in %(region)s: add the area code")

# A row problem in a sentence (marketing.ingest.rows.problem_message).
PROBLEM_COLUMN_VALUE = gettext_noop(
    "Row %(row)s (line %(line)s), column '%(column)s': '%(value)s' %(reason)s"
)
PROBLEM_COLUMN = gettext_noop("Row %(row)s (line %(line)s), column '%(column)s': %(reason)s")
PROBLEM_VALUE = gettext_noop("Row %(row)s (line %(line)s): '%(value)s' %(reason)s")
PROBLEM = gettext_noop("Row %(row)s (line %(line)s): %(reason)s")

# ---------------------------------------------------------------- fields and mapping

CONSENT_LABEL = gettext_noop("Consent: %(purpose)s")
BAD_ATTRIBUTE_NAME = gettext_noop(
    "'%(name)s' cannot be a profile attribute name: use lower-case letters, digits and _ "
    "(starting with a letter, at most 64 characters)"
)
NOT_A_FIELD = gettext_noop("'%(target)s' is not a field of a %(kind)s upload")
NO_SUCH_COLUMN = gettext_noop("the file has no column named '%(header)s' (for %(target)s)")
MAPPED_TWICE = gettext_noop("column '%(header)s' is mapped twice (%(other)s and %(target)s)")
REQUIRED_UNMAPPED = gettext_noop(
    "%(label)s (%(name)s) is required: choose the column that holds it"
)
MAPPING_PROBLEMS = gettext_noop("The column mapping has problems: %(problems)s.")

# ---------------------------------------------------------------- reading the file

UNKNOWN_ENCODING = gettext_noop(
    "'%(encoding)s' is not an encoding we know; try utf-8, latin-1 or cp1252."
)
CSV_LINE = gettext_noop("Line %(line)s cannot be read as CSV: %(error)s.")
CSV_HEADER = gettext_noop("The header row cannot be read as CSV: %(error)s.")
RAGGED_ROW = gettext_noop("row %(row)s (line %(line)s) has %(count)s fields")
RAGGED_MORE = gettext_noop(
    "Some rows do not have the %(width)s fields of the header: %(ragged)s (and %(more)s "
    "more). The file is read as %(delimiter)s separated; check for a missing or extra "
    "delimiter, or a quote that is not closed."
)
RAGGED = gettext_noop(
    "Some rows do not have the %(width)s fields of the header: %(ragged)s. The file is read "
    "as %(delimiter)s separated; check for a missing or extra delimiter, or a quote that is "
    "not closed."
)
TOO_MANY_COLUMNS = gettext_noop(
    "The file has %(count)s columns; at most %(limit)s can be uploaded. Remove the columns "
    "you do not need, or split the file."
)
HEADER_NUL = gettext_noop(
    "Column %(position)s of the header contains a NUL character (byte 0x00), which is not "
    "text. Remove it and upload the file again."
)
HEADER_BLANK = gettext_noop(
    "Column %(position)s of the header has no name. Give every column a name (a trailing "
    "delimiter at the end of the header also makes an empty column)."
)
HEADER_TWICE = gettext_noop(
    "The header names column '%(name)s' twice (columns %(position)s and %(second)s). "
    "Column names must be unique."
)
NOT_ENCODED = gettext_noop(
    "The file is not valid %(encoding)s text (%(where)s). Save it as 'CSV UTF-8', or choose "
    "the encoding it was saved in (for example latin-1 or cp1252) when uploading."
)
WHERE_LINE = gettext_noop("line %(line)s, byte 0x%(hex)s at position %(position)s")
WHERE_BYTE = gettext_noop("byte %(position)s")
NUL_ROW_COLUMN = gettext_noop(
    "Row %(row)s (line %(line)s), column '%(column)s' contains a NUL character (byte 0x00), "
    "which is not text; nothing was taken from this file. Remove the character (often left "
    "by a broken export) and upload the file again."
)
NUL_ROW = gettext_noop(
    "Row %(row)s (line %(line)s) contains a NUL character (byte 0x00), which is not text; "
    "nothing was taken from this file. Remove the character (often left by a broken export) "
    "and upload the file again."
)

# ---------------------------------------------------------------- uploads and imports

NOT_A_KIND = gettext_noop("'%(kind)s' is not a kind of upload; choose %(kinds)s.")
TOO_LARGE = gettext_noop(
    "The file is %(size)s (%(bytes)s bytes), over the upload limit of %(limit_size)s "
    "(%(limit)s bytes). Split it into smaller files."
)
HEADER_NOT_SPLIT_HINT = gettext_noop(
    "The header could not be split into the columns a %(kind)s file needs (%(needed)s): we "
    "read a single column '%(header)s'. It seems to separate them with %(separator)s. "
    "Separate the columns with a comma, semicolon, tab or | and upload the file again."
)
HEADER_NOT_SPLIT = gettext_noop(
    "The header could not be split into the columns a %(kind)s file needs (%(needed)s): we "
    "read a single column '%(header)s'. Separate the columns with a comma, semicolon, tab or "
    "| and upload the file again."
)
NOT_A_MODE = gettext_noop("'%(mode)s' is not an import mode; choose %(choices)s.")
NOT_A_TYPE = gettext_noop("Column “%(header)s”: '%(type)s' is not a type; choose %(names)s.")
UNEXPECTED = gettext_noop(
    "The import stopped on an unexpected error (%(error)s). The server log has the details "
    "(job %(job)s)."
)
# "problems": the first few row problems (PROBLEM...), then AND_MORE, joined with "; ".
NOTHING_IMPORTED = gettext_noop(
    "%(invalid)s of %(rows)s rows have problems, so nothing was imported (all or nothing). "
    "%(problems)s. The error file lists every problem; fix them, or import only the valid "
    "rows."
)
NONE_IMPORTED = gettext_noop("None of the %(rows)s rows could be imported. %(problems)s.")
AND_MORE = gettext_noop("and %(count)s more")
PROGRESS_CHECKED = gettext_noop("Checked %(rows)s of %(total)s rows (%(invalid)s with problems)")
PROGRESS_IMPORTED = gettext_noop("Imported %(rows)s of %(total)s rows (%(invalid)s with problems)")
# An import job's title, by the kind of upload.
IMPORT_TITLES = {
    "customers": gettext_noop("Import customers: %(file)s"),
    "offers": gettext_noop("Import offers: %(file)s"),
    "interactions": gettext_noop("Import responses (interactions): %(file)s"),
}

# Matched in this order: a template that also matches a longer one's texts comes after it.
TEMPLATES = (
    LONGER_THAN,
    FIELD_COUNT,
    EMPTY_REQUIRED,
    REPEATS_CUSTOMER,
    REPEATS_OFFER,
    REPEATS_RESPONSE,
    *OVERRIDES.values(),
    TOO_SHORT_IN,
    TOO_LONG_IN,
    LOCAL_IN,
    PROBLEM_COLUMN_VALUE,
    PROBLEM_COLUMN,
    PROBLEM_VALUE,
    PROBLEM,
    CONSENT_LABEL,
    BAD_ATTRIBUTE_NAME,
    NOT_A_FIELD,
    NO_SUCH_COLUMN,
    MAPPED_TWICE,
    REQUIRED_UNMAPPED,
    MAPPING_PROBLEMS,
    UNKNOWN_ENCODING,
    CSV_LINE,
    CSV_HEADER,
    RAGGED_ROW,
    RAGGED_MORE,
    RAGGED,
    TOO_MANY_COLUMNS,
    HEADER_NUL,
    HEADER_BLANK,
    HEADER_TWICE,
    NOT_ENCODED,
    WHERE_LINE,
    WHERE_BYTE,
    NUL_ROW_COLUMN,
    NUL_ROW,
    NOT_A_KIND,
    TOO_LARGE,
    HEADER_NOT_SPLIT_HINT,
    HEADER_NOT_SPLIT,
    NOT_A_MODE,
    NOT_A_TYPE,
    UNEXPECTED,
    NOTHING_IMPORTED,
    NONE_IMPORTED,
    AND_MORE,
    PROGRESS_CHECKED,
    PROGRESS_IMPORTED,
    *IMPORT_TITLES.values(),
)


# ---------------------------------------------------------------- saying it again


def translated_html(text: str) -> SafeString:
    """``text``, a message the ingest made, in the active language as HTML."""
    if in_english():
        return escape(text or "")
    return mark_safe(_html(str(text or "")))  # values escaped, markup ours


def translated(text: str) -> str:
    """``text``, a message the ingest made, in the active language as plain text."""
    if in_english():
        return str(text or "")
    return unescape(strip_tags(_html(str(text or ""))))


def as_html(translation: str) -> SafeString:
    """A translation as HTML: the markup it sets words apart with (``<code>``) is kept,
    any other text escaped."""
    if "<code>" in translation:
        return mark_safe(translation)  # the catalogue's own markup
    return escape(translation)


def format_html_message(message: str, **values) -> SafeString:
    """A translated message with ``%(name)s`` values (escaped unless already HTML)."""
    return mark_safe(as_html(message) % {k: conditional_escape(v) for k, v in values.items()})


def _html(text: str) -> str:
    if not text:
        return ""
    found = gettext(text)
    if found != text:
        return as_html(found)
    made = _made_from(text)
    if made is None:
        return escape(text)
    template, values = made
    message = gettext(template)
    if message == template:  # not translated: the text as it was
        return escape(text)
    return as_html(message) % {name: _value_html(name, value) for name, value in values.items()}


def _made_from(text: str, *, strictly: bool = False) -> tuple[str, dict[str, str]] | None:
    """The template ``text`` was made from and its values: the first template whose nested
    texts (a reason, a label, a list of problems) are known too, else (unless ``strictly``)
    the first that matches at all."""
    first = None
    for template, pattern in _patterns():
        match = pattern.fullmatch(text)
        if match is None:
            continue
        values = match.groupdict()
        if all(_VALUE_KNOWN[n](v) for n, v in values.items() if n in _VALUE_KNOWN):
            return template, values
        first = first or (template, values)
    return None if strictly else first


def _known(text: str) -> bool:
    """Whether ``text`` is a message of the catalogue or made from a template."""
    return gettext(text) != text or _made_from(text, strictly=True) is not None


def _items(text: str, separator: str = "; ") -> list[str] | None:
    """The known messages a list joined with ``separator`` holds, None when some piece is
    none. An item may hold the separator itself (in a value): the shortest known run of
    pieces is one item."""
    pieces = text.split(separator)
    items: list[str] = []
    start = 0
    while start < len(pieces):
        for end in range(start + 1, len(pieces) + 1):
            item = separator.join(pieces[start:end])
            if _known(item):
                items.append(item)
                start = end
                break
        else:
            return None
    return items


def _joined_html(text: str) -> str:
    items = _items(text) or text.split("; ")
    return pgettext("list separator", "; ").join(_html(item) for item in items)


def _kind_html(kind: str) -> str:
    from marketing.models import Upload

    return escape(Upload.Kind(kind).label) if kind in Upload.Kind.values else escape(kind)


def _size_html(size: str) -> str:
    """A size as ``filesizeformat`` wrote it in English ("532 bytes", "1.5 MB")."""
    from django.template.defaultfilters import filesizeformat

    match = re.fullmatch(r"([\d,]+) bytes?", size)
    if match is None:
        return escape(size)
    return escape(filesizeformat(int(match[1].replace(",", ""))).replace("\xa0", " "))


# Values that are product words or messages themselves, and how each is translated.
_VALUE_HTML: dict[str, Callable[[str], str]] = {
    "label": _html,
    "reason": _html,
    "source": _html,
    "purpose": _html,
    "delimiter": _html,
    "separator": _html,
    "where": _html,
    "ragged": _joined_html,
    "problems": _joined_html,
    "kind": _kind_html,
    "size": _size_html,
    "limit_size": _size_html,
}
# How to tell whether such a value is a product text (see ``_made_from``).
_VALUE_KNOWN: dict[str, Callable[[str], bool]] = {
    **{name: _known for name in ("label", "reason", "delimiter", "separator", "where")},
    **{name: (lambda value: _items(value) is not None) for name in ("ragged", "problems")},
}
# Values that are numbers (with thousands separators): matched as such, which keeps the
# templates apart.
_NUMBERS = frozenset(
    {"row", "line", "limit", "count", "width", "more", "rows", "total", "invalid", "job"}
    | {"position", "second", "bytes", "fields"}
)
# Values that are data or code, the same in every language: uploaded values and names, file
# names, field codes, encodings, region codes, error names.
_DATA = frozenset(
    {"value", "column", "header", "file", "name", "target", "other", "encoding", "error"}
    | {"mode", "type", "names", "kinds", "choices", "needed", "region", "hex"}
)
# Patterns of the other values: a quoted value runs to the last quote (values hold quotes
# more often than reasons do); the rest as short as the template allows.
_PATTERNS = {"value": r".*", "reason": r".+", "problems": r".+"}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _value_html(name: str, value: str) -> str:
    translate = _VALUE_HTML.get(name)
    if translate is not None:
        return translate(value)
    if name in _DATA and value:
        return f'<span translate="no">{escape(value)}</span>'
    return escape(value)


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    compiled = []
    for template in TEMPLATES:
        pattern, at = [], 0
        for placeholder in _PLACEHOLDER.finditer(template):
            name = placeholder[1]
            pattern.append(re.escape(template[at : placeholder.start()]))
            inner = r"[\d,]+" if name in _NUMBERS else _PATTERNS.get(name, r".+?")
            pattern.append(f"(?P<{name}>{inner})")
            at = placeholder.end()
        pattern.append(re.escape(template[at:]))
        compiled.append((template, re.compile("".join(pattern), re.S)))
    return tuple(compiled)
