from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from marketing.lockout import locked_out_message
from marketing.services.auth import api_tokens_revoke_all


class LogoutView(auth_views.LogoutView):
    """Logging out of the pages also revokes the user's API tokens."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            api_tokens_revoke_all(user=request.user)
        return super().post(request, *args, **kwargs)


def locked_out_page(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE)."""
    return render(
        request, "registration/locked_out.html", {"message": locked_out_message()}, status=429
    )
