from django.contrib.auth.models import AbstractBaseUser
from knox.models import AuthToken


def api_tokens_revoke_all(*, user: AbstractBaseUser) -> int:
    """Delete every API token of the user; returns how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted
