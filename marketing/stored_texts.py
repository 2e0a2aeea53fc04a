"""Texts the product stores in English and pages show in the reader's language.

A job's title, progress message and outlook, and an upload's row problems, are written in
English into the database (and the API answers them as they are). Pages translate them where
they show them: ``translated(text)`` finds the message the text was made from, reads its
placeholders back out of the text, and fills the translated message with them.

The messages are those below and the ``MESSAGES`` of the modules of ``PACKAGES`` (a service
lists there the texts it stores, marked with ``gettext_noop``). A placeholder's value is data
(a name, a number, a file name), kept as it is, unless the placeholder is named in ``SCOPES``
(its value is one of the texts of that scope, translated in turn; a scope of ``LISTS`` holds
a list of them) or in ``TEXTS`` (its value is a product text: a message, or any message of the
catalogue such as a choice's label). A text that no message made is shown as the catalogue
translates it, or as it is.
"""

import importlib
import pkgutil
import re
from functools import lru_cache

from django.utils import translation
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext, gettext_noop, pgettext

# ---- the top-level texts: job titles, progress and failure messages, outlooks ---------------

MESSAGES = (
    # marketing.services.jobs
    gettext_noop("Waiting for a worker"),
    gettext_noop("Waiting for a CPU worker: no GPU worker is running"),
    gettext_noop("Started"),
    gettext_noop("Done"),
    gettext_noop("Cancelled"),
    gettext_noop("Cancelling"),
    gettext_noop("Cancelled before it started"),
    gettext_noop("Cancelled (its worker had stopped)"),
    gettext_noop("Its worker stopped before the job finished: restarting"),
    gettext_noop(
        "Its worker stopped before the job finished, %(attempts)s times (a worker or its "
        "machine was restarted or ran out of memory); it is not restarted again. Start it "
        "again once the workers are healthy."
    ),
    gettext_noop(
        "Its worker stopped before the job finished (a worker or its machine was restarted "
        "or ran out of memory). Start it again."
    ),
    gettext_noop(
        "The job stopped on a database error (%(error)s): the connection to the database was "
        "lost or a statement failed. Start it again; if it fails again, an administrator finds "
        "the details on job %(job)s."
    ),
    # A job without a title (Job.__str__)
    gettext_noop("%(kind)s #%(job)s"),
    # Titles
    gettext_noop("Import customers: %(file)s"),
    gettext_noop("Import offers: %(file)s"),
    gettext_noop("Import responses (interactions): %(file)s"),
    gettext_noop("Train"),
    gettext_noop("Score"),
    gettext_noop("Explain"),
    gettext_noop(
        "Recommend %(count)s offer per customer from scores #%(scores)s (diversity %(diversity)s)"
    ),
    gettext_noop(
        "Recommend %(count)s offers per customer from scores #%(scores)s (diversity %(diversity)s)"
    ),
    gettext_noop("Uplift of “%(plan)s” by %(attribute)s = %(value)s"),
    gettext_noop("Export “%(audience)s” · %(format)s"),
    gettext_noop("Freeze audience “%(audience)s”"),
    gettext_noop("Count audience “%(audience)s”"),
    gettext_noop("Count segment “%(segment)s”"),
    gettext_noop("Count the customer base"),
    gettext_noop("Audience diversity of scores #%(scores)s"),
    gettext_noop("Erasure of a customer"),
    # Imports (marketing.services.ingest)
    gettext_noop("Reading the file"),
    gettext_noop("Checked %(rows)s of %(total)s rows (%(invalid)s with problems)"),
    gettext_noop("Imported %(rows)s of %(total)s rows (%(invalid)s with problems)"),
    gettext_noop(
        "%(invalid)s of %(rows)s rows have problems, so nothing was imported (all or nothing). "
        "%(problems)s. The error file lists every problem; fix them, or import only the valid "
        "rows."
    ),
    gettext_noop("None of the %(rows)s rows could be imported. %(problems)s."),
    gettext_noop(
        "The import stopped on an unexpected error (%(error)s). The server log has the details "
        "(job %(job)s)."
    ),
    # Audiences, counts and exports
    gettext_noop("Writing the members"),
    gettext_noop("Counting the members' consent"),
    gettext_noop("Counting the reasons members are left out"),
    gettext_noop("Checking the members' identifiers"),
    gettext_noop("Counting the members and their consent"),
    gettext_noop("Counting customers and their consent"),
    gettext_noop("An import is waiting to run: the counts are made once it has run."),
    gettext_noop("Grouping customers by %(field)s"),
    gettext_noop("Checking consent and writing the file"),
    gettext_noop("%(done)s of %(total)s members"),
    gettext_noop("Reading the scores of customers with a valid profiling consent"),
    gettext_noop("Comparing the top with %(count)s scored customers"),
    gettext_noop("Searching stored files and the model registry"),
    # Recommendations and plans
    gettext_noop("Reading the scores of customers with profiling consent"),
    gettext_noop("Reading the offers' text with the sentence encoder"),
    gettext_noop("Reading the customers' clicks and conversions"),
    gettext_noop("Re-ranking at %(count)s diversity settings"),
    gettext_noop("Building the lists at the chosen diversity"),
    gettext_noop("Saved %(done)s of %(total)s list entries"),
    gettext_noop("Reading the customers' profiles and responses"),
    gettext_noop("Fitting the treated and control models (fold %(fold)s of %(folds)s)"),
    gettext_noop("Measuring the uplift on held-out customers"),
    # Explanations
    gettext_noop("BERT: %(message)s"),
    gettext_noop("the baseline: %(message)s"),
    gettext_noop("Explained %(done)s of %(total)s customers"),
    # A job's outlook (marketing.selectors.jobs.JobOutlook.text)
    gettext_noop("About %(duration)s left at the current pace"),
    gettext_noop("Waiting: %(count)s job ahead (%(names)s)%(wait)s"),
    gettext_noop("Waiting: %(count)s jobs ahead (%(names)s)%(wait)s"),
)

# ---- texts found only inside others: placeholder name -> its texts --------------------------

SCOPES = {
    "duration": (
        gettext_noop("under a minute"),
        gettext_noop("%(seconds)s s"),
        gettext_noop("%(minutes)s min"),
        gettext_noop("%(hours)s h %(minutes)s min"),
    ),
    "wait": (
        gettext_noop(" · at least %(duration)s before it starts"),
        gettext_noop(" · about %(duration)s before it starts"),
    ),
    "names": (
        gettext_noop("%(job_title)s – %(state)s"),
        gettext_noop("%(count)s more"),
    ),
    "state": (
        gettext_noop("waiting"),
        gettext_noop("%(progress)s %%"),
        gettext_noop("%(progress)s %%, about %(duration)s left"),
    ),
    # An upload's row problems (marketing.ingest.rows.problem_message)
    "problems": (
        gettext_noop("Row %(row)s (line %(line)s), column '%(column)s': '%(value)s' %(reason)s"),
        gettext_noop("Row %(row)s (line %(line)s), column '%(column)s': %(reason)s"),
        gettext_noop("Row %(row)s (line %(line)s): '%(value)s' %(reason)s"),
        gettext_noop("Row %(row)s (line %(line)s): %(reason)s"),
        gettext_noop("and %(count)s more"),
    ),
    # Why a cell or row was refused (marketing.ingest.values and marketing.ingest.rows)
    "reason": (
        gettext_noop("is not a number"),
        gettext_noop("is not a number (use a dot for decimals, no thousands separator)"),
        gettext_noop("is not a finite number"),
        gettext_noop("is not yes/no (use true/false, yes/no or 1/0)"),
        gettext_noop("is not a date (use YYYY-MM-DD)"),
        gettext_noop("is not a date or date-time (use YYYY-MM-DD or YYYY-MM-DD HH:MM)"),
        gettext_noop("is negative"),
        gettext_noop("has more than two decimals"),
        gettext_noop("is too large"),
        gettext_noop("is not an email address"),
        gettext_noop("is not a phone number (digits, spaces, + ( ) . / - only)"),
        gettext_noop("is not an ISO 3166 country code (use GB for the United Kingdom)"),
        gettext_noop(
            "is not a country: use a two-letter ISO 3166 code (e.g. DE, FR, US) or the English name"
        ),
        gettext_noop("is longer than %(limit)s characters"),
        gettext_noop("is not a consent status (granted, denied or withdrawn)"),
        gettext_noop("is not a kind of interaction (impression, click or conversion)"),
        gettext_noop("has %(fields)s fields but the header has %(width)s"),
        gettext_noop("is empty, but %(label)s is required"),
        gettext_noop("repeats %(what)s of row %(row)s (line %(line)s)"),
        gettext_noop("is in the future"),
        gettext_noop("is not after the consent date"),
        gettext_noop("is not a known customer (import the customers first)"),
        gettext_noop("is not a known offer (import the offers first)"),
        gettext_noop(
            "is undated, but the customer's withdrawal of %(date)s (source: %(source)s) "
            "stands: an import cannot grant consent over it. If the customer consented "
            "again, a data steward records that consent."
        ),
        gettext_noop(
            "is undated, but the customer's denial of %(date)s (source: %(source)s) stands: "
            "an import cannot grant consent over it. If the customer consented again, a data "
            "steward records that consent."
        ),
        gettext_noop(
            "is dated %(given)s, but the customer's withdrawal of %(date)s (source: "
            "%(source)s) stands: an import cannot grant consent over it. If the customer "
            "consented again, a data steward records that consent."
        ),
        gettext_noop(
            "is dated %(given)s, but the customer's denial of %(date)s (source: %(source)s) "
            "stands: an import cannot grant consent over it. If the customer consented again, "
            "a data steward records that consent."
        ),
    ),
}
# Scopes whose value is a list of texts, and what separates them in the stored text.
LISTS = {"names": "; ", "problems": "; "}
# Placeholders whose value is a product text (a message of the top level, or of the catalogue
# such as a choice's label).
TEXTS = frozenset({"kind", "job_title", "format", "scorer", "mode", "message", "source", "label"})
# Modules whose ``MESSAGES`` (the texts they store, marked with ``gettext_noop``) are read too.
PACKAGES = ("marketing.services", "marketing.selectors", "marketing.ingest")

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _pattern(message: str) -> tuple[re.Pattern, int]:
    """The regular expression that reads a text made from ``message``, and the length of the
    message's own words (the longer, the more specific)."""
    parts = _PLACEHOLDER.split(message)
    regex, seen, length = [], set(), 0
    for at, part in enumerate(parts):
        if at % 2 == 0:
            regex.append(re.escape(part.replace("%%", "%")))
            length += len(part)
        else:
            regex.append(f"(?P={part})" if part in seen else f"(?P<{part}>.*?)")
            seen.add(part)
    return re.compile("".join(regex), re.DOTALL), length


class _Table:
    """The messages of one scope: those without placeholders by text, the others as
    patterns, the most specific first."""

    def __init__(self, messages) -> None:
        unique = list(dict.fromkeys(messages))
        self.messages = unique
        self.fixed = frozenset(m for m in unique if not _PLACEHOLDER.search(m))
        ranked = sorted(
            ((*_pattern(m), m) for m in unique if _PLACEHOLDER.search(m)), key=lambda p: -p[1]
        )
        self.patterns = [(regex, message) for regex, _, message in ranked]


def _declared() -> list[str]:
    """The ``MESSAGES`` of the modules of ``PACKAGES``."""
    found: list[str] = []
    for package in PACKAGES:
        for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
            messages = getattr(importlib.import_module(f"{package}.{module.name}"), "MESSAGES", ())
            if isinstance(messages, dict):
                messages = messages.values()
            found += [m for m in messages if isinstance(m, str)]
    return found


@lru_cache(maxsize=1)
def _tables() -> dict[str, _Table]:
    return {
        "": _Table([*MESSAGES, *_declared()]),
        **{scope: _Table(texts) for scope, texts in SCOPES.items()},
    }


def in_english() -> bool:
    language = get_language()
    return not language or language.split("-")[0] == "en"


def english(label) -> str:
    """A label (a model choice's, perhaps translated lazily) in English, for a text that is
    stored or answered by the API."""
    with translation.override("en"):
        return str(label)


def translated(text: str, scope: str = "") -> str:
    """``text`` (stored in English) in the active language: as it is when no message of
    ``scope`` (the top level by default) or of the catalogue made it."""
    if not text or in_english():
        return text
    return _translated(str(text), scope, get_language(), False)


def translated_html(text: str, scope: str = "") -> SafeString:
    """``translated(text)`` as HTML: each value it quotes (a name, a file name, an uploaded
    value: anything but a product text) in a ``<span translate="no">``."""
    if not text or in_english():
        return conditional_escape(text or "")
    # Escaped, but for the spans it adds.
    return mark_safe(_translated(str(text), scope, get_language(), True))


@lru_cache(maxsize=4096)
def _translated(text: str, scope: str, language: str, html: bool) -> str:
    """``language`` is the active one: a key of the cache only. With ``html``, the answer is
    HTML, escaped."""
    if scope in LISTS:
        separator = pgettext("list separator", "; ")
        items = [_one(item, scope, html) for item in text.split(LISTS[scope])]
        return (escape(separator) if html else separator).join(items)
    return _one(text, scope, html)


def _one(text: str, scope: str, html: bool = False) -> str:
    if not text:
        return text
    table = _tables().get(scope) or _tables()[""]
    if text in table.fixed:
        return _as(gettext(text), html)
    for regex, message in table.patterns:
        match = regex.fullmatch(text)
        if match is None:
            continue
        values = {name: _value(name, value, html) for name, value in match.groupdict().items()}
        try:
            return _as(gettext(message), html) % values
        except (KeyError, TypeError, ValueError):  # a translation that lost a placeholder
            return _as(text, html)
    # Any message of the catalogue: a service's own, marked where it is stored.
    return _as(gettext(text), html)


def _as(text: str, html: bool) -> str:
    return str(escape(text)) if html else text


def _value(name: str, value: str, html: bool) -> str:
    if name in SCOPES:
        return _translated(value, name, get_language(), html)
    if name in TEXTS:
        return _one(value, "", html)
    if html and _WORD.search(value):
        return f'<span translate="no">{escape(value)}</span>'
    return _as(value, html)


_WORD = re.compile(r"[^\W\d_]")


def catalogue() -> dict:
    """What the pages' script needs to translate the texts that job polling brings (the API
    answers them in English): the messages of each scope with their translations, and, for
    the placeholders of ``TEXTS``, the labels of the models' choices and of the export
    formats."""
    return {
        "scopes": {
            scope: {message: gettext(message) for message in table.messages}
            for scope, table in _tables().items()
        },
        "lists": LISTS,
        "separator": pgettext("list separator", "; "),
        "texts": sorted(TEXTS),
        "words": {english: gettext(english) for english in _words()},
    }


@lru_cache(maxsize=1)
def _words() -> list[str]:
    """The labels (in English) of the choices of the models' fields and of the formats."""
    from django.apps import apps

    from marketing.exporters.formats import FORMATS

    labels = [fmt.label for fmt in FORMATS.values()]
    for model in apps.get_app_config("marketing").get_models():
        for field in model._meta.get_fields():
            labels += [label for _, label in getattr(field, "choices", None) or ()]
    with translation.override("en"):
        return sorted({str(label) for label in labels})
