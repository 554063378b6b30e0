"""``Authorization: Token <secret>`` against the hashed ``ApiToken`` rows (the header and the 401
answers are DRF's ``TokenAuthentication``'s, so integrators change nothing)."""

from __future__ import annotations

import re

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

from inspections.access.audit import client_address
from inspections.access.services.api_tokens import ApiTokenRefused, api_token_authenticate


class ApiTokenAuthentication(TokenAuthentication):
    """Sets ``request.user`` to the owner and ``request.auth`` to the ``ApiToken`` (whose scope
    the permission checks read)."""

    keyword = "Token"

    def authenticate(self, request):
        self._request = request
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        request = getattr(self, "_request", None)
        try:
            token = api_token_authenticate(key, ip_address=client_address(request) if request is not None else None)
        except ApiTokenRefused as refused:
            raise exceptions.AuthenticationFailed(str(refused)) from None
        return token.user, token


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9._~+-]{0,29}")


def not_authenticated_explained(exc: exceptions.NotAuthenticated, request) -> exceptions.NotAuthenticated:
    """DRF's "credentials were not provided", said precisely when the request did send an
    ``Authorization`` header, but with a scheme this API does not read (``Bearer``, ``Basic``):
    the integrator then knows to write ``Token``. Left as it is otherwise. Runs only when nothing
    authenticated the request, so a session behind a proxy's ``Basic`` header is unaffected."""
    words = get_authorization_header(request).split() if request is not None else []
    if not words or words[0].lower() == ApiTokenAuthentication.keyword.lower().encode():
        return exc
    scheme = words[0].decode("latin-1")
    named = f"the scheme {scheme!r}" if _SCHEME.fullmatch(scheme) else "another scheme"
    explained = exceptions.NotAuthenticated(
        f"The Authorization header uses {named}; this API reads 'Authorization: Token <key>' (the same key, "
        f"with the word Token before it) or a logged-in session.")
    explained.status_code = exc.status_code  # the view decided these: 401 with its WWW-Authenticate header
    if getattr(exc, "auth_header", None):
        explained.auth_header = exc.auth_header
    return explained
