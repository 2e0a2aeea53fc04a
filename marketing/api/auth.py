"""API tokens: a username and password buy an expiring token; logout revokes it.

Tokens come from django-rest-knox (only a digest is stored, each has an expiry); failed
passwords count towards the same django-axes lockout as the login form. The check of each
request's token is ``marketing.api.tokens``.
"""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox import views as knox_views
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from marketing.api.common import DetailSerializer
from marketing.api.tokens import TokenAuthentication
from marketing.lockout import locked_out_message


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI schema's security scheme for these tokens: knox's, under its name."""

    target_class = "marketing.api.tokens.TokenAuthentication"


class TokenLoginView(knox_views.LoginView):
    """Exchanges a username and password for an API token ("Authorization: Token <key>")."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer(
                "IssuedToken",
                {"expiry": serializers.DateTimeField(), "token": serializers.CharField()},
            ),
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(DetailSerializer, description="Locked out after failures."),
        },
    )
    def post(self, request: Request, format=None) -> Response:
        credentials = AuthTokenSerializer(data=request.data, context={"request": request})
        if not credentials.is_valid():
            # django-axes marks the request it refused; DRF's request is not the one the
            # middleware sees, so the refusal is answered here.
            if getattr(request, "axes_locked_out", False):
                return Response(
                    {"detail": locked_out_message()}, status=status.HTTP_429_TOO_MANY_REQUESTS
                )
            return Response(credentials.errors, status=status.HTTP_400_BAD_REQUEST)
        request.user = credentials.validated_data["user"]
        return super().post(request, format)


@extend_schema(request=None, responses={204: None})
class TokenLogoutView(knox_views.LogoutView):
    """Revokes the token sent with the request."""

    authentication_classes = (TokenAuthentication,)


@extend_schema(request=None, responses={204: None})
class TokenLogoutAllView(knox_views.LogoutAllView):
    """Revokes every token of the user whose token is sent with the request."""

    authentication_classes = (TokenAuthentication,)
