"""The layers keep to their jobs: selectors read without speaking HTTP, template tags draw
what views hand them."""

import ast
from pathlib import Path

import pytest

import marketing

PACKAGE = Path(marketing.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def modules_of(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


@pytest.mark.parametrize("path", modules_of("selectors"), ids=lambda p: p.name)
def test_it_builds_no_http_response_in_a_selector(path):
    assert not {m for m in imported_modules(path) if m.startswith("django.http")}


@pytest.mark.parametrize("path", modules_of("templatetags"), ids=lambda p: p.name)
def test_it_neither_queries_nor_imports_views_in_a_template_tag(path):
    imported = imported_modules(path)
    assert not {m for m in imported if m.startswith(("marketing.views", "marketing.models"))}
    assert ".objects" not in path.read_text()


def imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


@pytest.mark.parametrize(
    "path", modules_of("views") + modules_of("api"), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_it_leaves_audit_events_to_services_not_views(path):
    assert "audit_log" not in imported_names(path)


def test_it_keeps_the_current_consent_table_to_its_writer_and_the_consent_selector():
    allowed = {
        PACKAGE / "models" / "__init__.py",
        PACKAGE / "models" / "consent.py",
        PACKAGE / "selectors" / "consent.py",
        PACKAGE / "services" / "current_consent.py",
    }
    users = {
        path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and "CurrentConsent" in path.read_text()
    }
    assert users == allowed
