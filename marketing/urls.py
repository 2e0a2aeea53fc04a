from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from marketing.views.auth import LogoutView, language_set
from marketing.views.health import healthz

admin.site.site_header = "Campaign Studio console"
admin.site.site_title = "Campaign Studio console"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="registration/login.html"),
        name="login",
    ),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/language/", language_set, name="language-set"),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("api/", include("marketing.api.urls")),
    path("", include("marketing.views.urls")),
]

handler404 = "marketing.views.errors.page_not_found"
handler500 = "marketing.views.errors.server_error"
