from rest_framework.permissions import SAFE_METHODS, BasePermission

from marketing.roles import ALL_ROLES, MARKETER, has_role


class RolePermission(BasePermission):
    """Any role may read; writing needs one of the view's ``write_roles`` (marketer by default).

    A view narrows reading with ``read_roles`` (e.g. consent history: stewards only).
    """

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return has_role(request.user, getattr(view, "read_roles", ALL_ROLES))
        return has_role(request.user, getattr(view, "write_roles", (MARKETER,)))
