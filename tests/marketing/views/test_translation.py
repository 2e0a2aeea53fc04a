"""Every page reads in Simplified Chinese when the user chose it.

The route walk renders every page of the dashboard (the API and the admin console aside) over
one of everything the product makes, as each role, in the user's chosen language. What a
person reads there (text, tooltips, labels, button values, chart titles and legends) is
compared with the message catalogue: a text still in English is either a string the catalogue
has but leaves untranslated, or one that was never marked for translation. What the users put
in themselves (names, uploaded values, file names, pseudonyms) stays as they wrote it, and so
do code samples (``<code>``, ``<pre>``) and what a page marks ``translate="no"``.
"""

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client, override_settings

from marketing.models import (
    Audience,
    CampaignPlan,
    ConsentRecord,
    Customer,
    Interaction,
    Job,
    ModelPromotion,
    Offer,
    ProfileField,
    Segment,
    Suppression,
    TrainingRun,
    Upload,
)
from marketing.roles import DATA_STEWARD, MARKETER, VIEWER
from marketing.services.preferences import user_language_set
from tests.marketing.api.helpers import logged_in
from tests.marketing.pii_world import World, build_world, user_with_role
from tests.marketing.test_no_pii_in_responses import ROUTES, Route, objects_for, url_for

pytestmark = pytest.mark.django_db

LANGUAGE = "zh-hans"
CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
# Names that stay as they are in every language: the product, platforms, file formats,
# measures and model families a marketer meets by these names.
KEPT = [
    "Campaign Studio",
    "Google Customer Match",
    "Meta Custom Audiences",
    "Google",
    "Meta",
    "TikTok",
    "CSV",
    "JSON",
    "API",
    "OpenAPI",
    "REST",
    "AUC",
    "PSI",
    "ROI",
    "SHAP",
    "BERT",
    "LoRA",
    "LightGBM",
    "MiniLM",
    "GPU",
    "CPU",
    "ID",
    "E.164",
    "ISO",
    "UTF-8",
    "SHA-256",
    "PII",
    "URL",
    "Qini",
    "AdamW",
    "NDCG",
    "MMR",
    "DPP",
    "GDPR",
    "ISO 3166-1 alpha-2",
    "ISO 8601",
]
# Pages that are not pages: machine answers, downloads and form posts.
NOT_PAGES = ("api/", "admin/", "jsi18n/", "healthz", "accounts/logout/", "accounts/language/")
CODE_TAGS = {"code", "pre", "kbd", "samp", "script", "style", "template"}
VOID_TAGS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
CHART_KEYS = {"text", "name", "hovertemplate"}
ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z'’]+")


class ReadText(HTMLParser):
    """The text a person reads on the page, outside code and ``translate="no"``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []
        self.json_blocks: dict[str, str] = {}
        self._json_id = ""

    @property
    def kept(self) -> bool:
        return any(skip for _, skip in self.stack)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        skip = tag in CODE_TAGS or attributes.get("translate") == "no"
        if not skip and not self.kept:
            self.texts += [attributes[a] for a in READ_ATTRIBUTES if attributes.get(a)]
            if tag == "input" and attributes.get("type") in {"submit", "button"}:
                self.texts.append(attributes.get("value") or "")
        if tag == "script" and attributes.get("type") == "application/json":
            self._json_id = attributes.get("id") or ""
        if tag not in VOID_TAGS:
            self.stack.append((tag, skip))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        for at in range(len(self.stack) - 1, -1, -1):
            if self.stack[at][0] == tag:
                del self.stack[at:]
                break
        if tag == "script":
            self._json_id = ""

    def handle_data(self, data):
        if self._json_id:
            self.json_blocks[self._json_id] = data
        elif not self.kept:
            self.texts.append(data)


def chart_texts(value, key: str = "") -> Iterator[str]:
    """Titles, legend names, annotations and hover text of a plotly figure's JSON."""
    if isinstance(value, dict):
        for inner_key, inner in value.items():
            yield from chart_texts(inner, inner_key)
    elif isinstance(value, list):
        if key not in {"text", "customdata", "x", "y", "z", "labels", "ticktext", "tickvals"}:
            for inner in value:
                yield from chart_texts(inner, key)
    elif isinstance(value, str) and key in CHART_KEYS:
        yield re.sub(r"%\{[^}]*\}|<[^>]+>", " ", value)


def read_texts(body: str) -> list[str]:
    parser = ReadText()
    parser.feed(body)
    texts = list(parser.texts)
    for block_id, data in parser.json_blocks.items():
        if block_id.endswith("-chart-data"):
            texts += list(chart_texts(json.loads(data)))
        elif block_id.endswith("-labels"):
            texts += [str(v) for v in json.loads(data).values()]
    return [" ".join(text.split()) for text in texts if text.strip()]


def collect_strings(value) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from collect_strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from collect_strings(inner)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


# What users put in: (model, fields). Choices are the product's words and are not here.
USER_DATA = [
    (Customer, ("external_id", "pseudonym", "attributes")),
    (ProfileField, ("name", "label", "sample_values")),
    (Offer, ("external_id", "title", "category", "description")),
    (Interaction, ("campaign",)),
    (Segment, ("name", "description")),
    (Audience, ("name",)),
    (CampaignPlan, ("name",)),
    (Upload, ("original_name", "headers")),
    (TrainingRun, ("name", "base_model", "example_text")),
    (ModelPromotion, ("note",)),
    (ConsentRecord, ("note", "notice_version")),
    (Suppression, ("reason",)),
    (User, ("username", "first_name", "last_name")),
]


def user_data() -> list[str]:
    values: set[str] = set()
    for model, fields in USER_DATA:
        for row in model.objects.values_list(*fields):
            for value in row:
                values.update(collect_strings(value))
    # An erasure's reason, typed by the steward.
    for params in Job.objects.filter(kind=Job.Kind.ERASE).values_list("params", flat=True):
        values.update(collect_strings((params or {}).get("reason")))
    kept = [v.strip() for v in values if ENGLISH_WORD.search(v)]
    return sorted(kept, key=len, reverse=True)


def english_left(text: str, data: list[str]) -> bool:
    for value in data:
        text = text.replace(value, " ")
    for term in KEPT:
        text = re.sub(rf"(?<![A-Za-z]){re.escape(term)}(?![A-Za-z])", " ", text)
    return bool(ENGLISH_WORD.search(text))


def catalogue() -> dict[str, str]:
    entries = {}
    for name in ("django.po", "djangojs.po"):
        if (CATALOGUE / name).exists():
            for entry in polib.pofile(str(CATALOGUE / name)):
                entries[entry.msgid] = entry.msgstr or entry.msgstr_plural.get(0, "")
    return entries


def page_routes() -> list[Route]:
    return [route for route in ROUTES if not route.template.startswith(NOT_PAGES)]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("translated")
    with (
        override_settings(
            JOB_QUEUE="inline", MEDIA_ROOT=root / "media", MODEL_REGISTRY_DIR=root / "models"
        ),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        world = build_world(
            marketer=user_with_role("walk-marketer", MARKETER),
            steward=user_with_role("walk-steward", DATA_STEWARD),
            viewer=user_with_role("walk-viewer", VIEWER),
        )
        for user in (world.marketer, world.steward, world.viewer):
            user_language_set(user, LANGUAGE)
        yield world
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _jobs_run_inline(world):
    """Replaces the suite's per-test media folder: the world's files live in the module's."""


def untranslated(client: Client, url: str, data: list[str], english: set[str]) -> list[str]:
    response = client.get(url)
    # Pages, and the pages that say a page is not there or not for this role.
    if response.status_code not in {200, 403, 404} or "text/html" not in response["Content-Type"]:
        return []
    body = response.content.decode()
    assert f'lang="{LANGUAGE}"' in body, f"{url} is not served in {LANGUAGE}"
    left = []
    for text in read_texts(body):
        if text in english:
            left.append(f"in the catalogue, untranslated: {text!r}")
        elif english_left(text, data):
            left.append(f"not marked for translation: {text!r}")
    return left


@pytest.mark.parametrize("role", ["marketer", "steward", "viewer"])
def test_every_page_reads_in_simplified_chinese(world, role):
    english = {msgid for msgid, msgstr in catalogue().items() if not msgstr}
    data = user_data()
    client = logged_in(getattr(world, role))
    found: dict[str, list[str]] = {}
    walked = 0
    for route in page_routes():
        for attribute in objects_for(route) or ():
            url = url_for(route, world, attribute)
            walked += 1
            left = untranslated(client, url, data, english)
            if left:
                found[url] = sorted(set(left))
    assert walked > 40
    report = "\n".join(f"{url}\n  " + "\n  ".join(left) for url, left in found.items())
    assert not found, f"English left on {len(found)} pages as the {role}:\n{report}"


def test_the_login_page_follows_the_browser_language():
    client = Client(HTTP_ACCEPT_LANGUAGE=LANGUAGE)
    english = {msgid for msgid, msgstr in catalogue().items() if not msgstr}
    left = untranslated(client, "/accounts/login/", [], english)
    assert not left, left


def test_a_user_chooses_their_language_and_keeps_it(world):
    client = logged_in(world.marketer)
    user_language_set(world.marketer, "en")
    client.post("/accounts/language/", {"language": LANGUAGE, "next": "/segments/"})
    assert 'lang="zh-hans"' in client.get("/").content.decode()
    # A new session (another browser) reads the choice from the user's settings.
    assert 'lang="zh-hans"' in logged_in(world.marketer).get("/").content.decode()
    # Someone else is not affected.
    user_language_set(world.viewer, "en")
    assert 'lang="en"' in logged_in(world.viewer).get("/").content.decode()


def test_the_language_form_refuses_an_unknown_language_and_a_foreign_next(world):
    client = logged_in(world.marketer)
    assert client.post("/accounts/language/", {"language": "xx"}).status_code == 400
    answer = client.post(
        "/accounts/language/", {"language": "en", "next": "https://elsewhere.example/"}
    )
    assert answer.status_code == 302
    assert answer["Location"] == "/"


def test_every_catalogue_entry_is_translated_and_compiled():
    """The committed .mo files are the compiled .po files (``./dev messages``)."""
    for name in ("django", "djangojs"):
        po_path = CATALOGUE / f"{name}.po"
        if not po_path.exists():
            continue
        po = polib.pofile(str(po_path))
        assert not [e.msgid for e in po if not e.translated() and not e.obsolete]
        mo = polib.mofile(str(CATALOGUE / f"{name}.mo"))
        compiled = {e.msgid: e.msgstr or e.msgstr_plural.get(0, "") for e in mo}
        expected = {e.msgid: e.msgstr or e.msgstr_plural.get(0, "") for e in po if e.translated()}
        assert compiled == expected
