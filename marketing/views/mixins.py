from collections.abc import Iterable

from django.core.exceptions import PermissionDenied

from marketing.roles import ALL_ROLES, MARKETER, has_role


class RoleRequiredMixin:
    """Page access by role: ``read_roles`` for GET/HEAD, ``write_roles`` for anything else."""

    read_roles: Iterable[str] = ALL_ROLES
    write_roles: Iterable[str] = (MARKETER,)

    def dispatch(self, request, *args, **kwargs):
        roles = (
            self.read_roles if request.method in ("GET", "HEAD", "OPTIONS") else self.write_roles
        )
        if not has_role(request.user, roles):
            raise PermissionDenied("Your role does not allow this page.")
        return super().dispatch(request, *args, **kwargs)
