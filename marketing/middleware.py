from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.utils import translation

# Paths that authenticate on their own terms: the login page itself, static files, the admin
# (its own login) and the API (DRF answers 401/403 instead of redirecting a machine client);
# and the health check, which tells nothing but "ok".
OPEN_PREFIXES = (
    "/accounts/login/",
    "/admin/",
    "/api/",
    "/" + settings.STATIC_URL.lstrip("/"),
    "/healthz",
    "/jsi18n/",
)


class LoginRequiredEverywhereMiddleware:
    """Every page needs a logged-in user unless it is explicitly open."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(OPEN_PREFIXES):
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return self.get_response(request)


class UserLanguageMiddleware:
    """A logged-in user reads the interface in the language they chose; the choice is read from
    the database once per session (after LocaleMiddleware, which serves everyone else)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = self._chosen(request)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        if language:
            response.headers.setdefault("Content-Language", language)
        return response

    @staticmethod
    def _chosen(request) -> str:
        if not request.user.is_authenticated:
            return ""
        from marketing.services.preferences import LANGUAGE_SESSION_KEY, user_language

        session = request.session
        if LANGUAGE_SESSION_KEY not in session:
            session[LANGUAGE_SESSION_KEY] = user_language(request.user)
        return session[LANGUAGE_SESSION_KEY]
