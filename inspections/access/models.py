"""Who may do what: role groups, API tokens, the authentication audit trail: models (fields and constraints; services do the writing)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.db.models import Q


class AuthEventKind(models.TextChoices):
    LOGIN = "login", "logged in"
    LOGIN_FAILED = "login_failed", "login failed"
    LOCKOUT = "lockout", "locked out"
    UNLOCK = "unlock", "unlocked"
    LOGOUT = "logout", "logged out"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    ROLE_ADDED = "role_added", "role added"
    ROLE_REMOVED = "role_removed", "role removed"
    TOKEN_NEW_ADDRESS = "token_new_ip", "API token used from a new address"
    USER_CREATED = "user_created", "account created"
    USER_DEACTIVATED = "user_deactivated", "account deactivated"
    USER_REACTIVATED = "user_reactivated", "account reactivated"
    PASSWORD_LINK = "password_link", "password link made"


class AuthEvent(models.Model):
    """One authentication event; append-only (a database trigger refuses UPDATE and DELETE).

    ``user`` and ``actor`` are plain ids without a foreign-key constraint, and ``username`` keeps
    the name as it was: the trail outlives the accounts it speaks of and never changes when one
    is deleted.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=16, choices=AuthEventKind.choices, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+", help_text="Whose account the event concerns.",
    )
    username = models.CharField(max_length=150, blank=True, help_text="The user name as given or as it was then.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+", help_text="Who did it, when someone else than the user (an admin changing roles).",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AuthEventKind.values), name="auth_event_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.username or '-'} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class ApiTokenScope(models.TextChoices):
    """What a token may do, checked beside its owner's role (the effective right is both)."""

    READ = "read", "read only"
    UPLOAD = "upload", "read and upload"
    REVIEW = "review", "read and review"
    ADMIN = "admin", "everything the role allows"


class ApiToken(models.Model):
    """An API token. The secret itself is never stored: only its first characters (``prefix``,
    for lookup and display) and its SHA-256 (``digest``); a database dump holds no working key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=ApiTokenScope.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=ApiTokenScope.values), name="api_token_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"

    @property
    def state(self) -> str:
        """live, revoked or expired."""
        from django.utils import timezone

        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "live"


class HashedSession(AbstractBaseSession):
    """A login session stored under a keyed hash of its key (``inspections.access.sessions``).

    The cookie's key is never stored, so a database dump or backup holds no working login:
    looking a session up needs the key from the browser and SECRET_KEY.
    """

    # HMAC-SHA256 as 64 hex digits, longer than Django's 40-character session key column.
    session_key = models.CharField("session key hash", max_length=64, primary_key=True)

    class Meta(AbstractBaseSession.Meta):
        db_table = "inspections_hashed_session"

    @classmethod
    def get_session_store_class(cls):
        from inspections.access.sessions import SessionStore

        return SessionStore
