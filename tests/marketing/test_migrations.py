import pytest
from django.db import connection


@pytest.mark.django_db
def test_it_leaves_no_table_of_plain_text_api_tokens():
    assert "authtoken_token" not in connection.introspection.table_names()
