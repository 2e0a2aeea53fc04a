from django.conf import settings
from django.contrib.auth.views import redirect_to_login

# Paths that authenticate on their own terms: the login page itself, static files, the admin
# (its own login) and the API (DRF answers 401/403 instead of redirecting a machine client);
# and the health check, which tells nothing but "ok".
OPEN_PREFIXES = (
    "/accounts/login/",
    "/admin/",
    "/api/",
    "/" + settings.STATIC_URL.lstrip("/"),
    "/healthz",
)


class LoginRequiredEverywhereMiddleware:
    """Every page needs a logged-in user unless it is explicitly open."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(OPEN_PREFIXES):
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return self.get_response(request)
