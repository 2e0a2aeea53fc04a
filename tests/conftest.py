import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache

from marketing.roles import DATA_STEWARD, MARKETER, VIEWER, sync_role_groups

# Fixtures shared by test folders (tiny BERT, a trained run, an offer with clicks...), used
# by name without importing them.
pytest_plugins = [
    "tests.marketing.training_helpers",
    "tests.marketing.explain_helpers",
    "tests.object_store",
]


@pytest.fixture(autouse=True)
def _jobs_run_inline(settings, tmp_path):
    """Unit tests run jobs synchronously; integration tests switch to a real Celery worker."""
    settings.JOB_QUEUE = "inline"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODEL_REGISTRY_DIR = tmp_path / "models"


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    """Throttle counts live in the cache, which outlives a test's database rollback."""
    cache.clear()


def _user_with_role(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password="pw-for-tests-only-123")
    if role:
        # Transactional tests flush the tables that the roles migration filled.
        sync_role_groups()
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def marketer(db) -> User:
    return _user_with_role("mara", MARKETER)


@pytest.fixture
def steward(db) -> User:
    return _user_with_role("stew", DATA_STEWARD)


@pytest.fixture
def viewer(db) -> User:
    return _user_with_role("vic", VIEWER)


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def steward_client(client, steward):
    client.force_login(steward)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client
