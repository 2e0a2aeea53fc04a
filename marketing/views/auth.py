from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from marketing.lockout import locked_out_message
from marketing.services.auth import api_tokens_revoke_all
from marketing.services.preferences import LANGUAGE_SESSION_KEY, user_language_set


class LogoutView(auth_views.LogoutView):
    """Logging out of the pages also revokes the user's API tokens."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            api_tokens_revoke_all(user=request.user)
        return super().post(request, *args, **kwargs)


def locked_out_page(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE)."""
    return render(
        request,
        "registration/locked_out.html",
        {"message": locked_out_message(translate=True)},
        status=429,
    )


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=settings.LANGUAGES)
    next = forms.CharField(required=False)


@require_POST
@login_required
def language_set(request: HttpRequest) -> HttpResponse:
    """The user menu's language choice: kept for the user, and for this session at once."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Choose one of the offered languages."))
    language = form.cleaned_data["language"]
    user_language_set(request.user, language)  # type: ignore[arg-type]
    request.session[LANGUAGE_SESSION_KEY] = language
    target = form.cleaned_data["next"]
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("overview")
    return redirect(target)
