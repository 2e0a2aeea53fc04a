"""Every list page says it is empty through ``includes/empty.html``, in the same words."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

EMPTY_LISTS = {
    "upload-list": "No uploads yet",
    "customer-list": "No customers yet",
    "segment-list": "No segments yet",
    "model-list": "No models yet",
    "recommendation-list": "No recommendations yet",
    "plan-list": "No campaign plans yet",
    "audience-list": "No audiences yet",
    "export-list": "No exports yet",
    "job-list": "No jobs yet",
}


def empty_state(content: str) -> str:
    found = re.search(
        r'<div class="empty[^"]*" data-testid="empty-state">(.*?</h3>)', content, re.S
    )
    assert found, "the page has no empty state from includes/empty.html"
    return found.group(1)


@pytest.mark.parametrize(("name", "title"), EMPTY_LISTS.items())
def test_it_shows_an_empty_list_through_the_empty_state_include(marketer_client, name, title):
    response = marketer_client.get(reverse(name))
    assert response.status_code == 200
    assert f"<h3>{title}</h3>" in empty_state(response.content.decode())


@pytest.mark.parametrize("name", ["segment-list", "model-list", "audience-list"])
@pytest.mark.parametrize(("role", "offered"), [("marketer_client", True), ("viewer_client", False)])
def test_it_offers_the_first_step_to_marketers_only(request, name, role, offered):
    client = request.getfixturevalue(role)
    assert ('class="btn btn-primary"' in empty_page(client, name)) is offered


def empty_page(client, name: str) -> str:
    content = client.get(reverse(name)).content.decode()
    start = content.index('data-testid="empty-state"')
    return content[start : content.index("</section>", start)]


@pytest.mark.django_db
def test_the_upload_empty_states_know_the_demo_came_without_an_upload(marketer_client):
    from marketing.ingest.demo import load_demo_data

    said = "The demo data was loaded directly, without an upload."
    assert said not in marketer_client.get(reverse("upload-list")).content.decode()
    load_demo_data(limit=5)
    assert said in marketer_client.get(reverse("upload-list")).content.decode()
    assert said in marketer_client.get(reverse("overview")).content.decode()
