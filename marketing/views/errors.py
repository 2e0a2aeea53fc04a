"""The product's answers when a page is missing or the server fails: the dashboard's own
pages for people, JSON for API clients (``/api/``), never Django's technical pages."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

API_PREFIX = "/api/"

NOT_FOUND = "Not found."
SERVER_ERROR = (
    "The server could not complete the request. It has been logged; please try again later."
)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": NOT_FOUND}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Rendered without the request's context: whatever failed (the database, a template
    tag) may fail again, so the page needs nothing but a template and the static files."""
    if _wants_json(request):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    return HttpResponse(loader.get_template("500.html").render(), status=500)
