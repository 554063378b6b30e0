"""``Authorization: Token <secret>`` against the hashed ``ApiToken`` rows (the header and the 401
answers are DRF's ``TokenAuthentication``'s, so integrators change nothing)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

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
