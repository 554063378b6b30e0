"""API tokens: made, checked and revoked here; the secret exists only in the answer to its making.

A secret is ``sqc_`` and 43 characters from ``secrets`` (256 random bits). The database keeps its
first ``PREFIX_LENGTH`` characters (to find the row and to show which token it is) and its
SHA-256. A fast hash is right here, unlike for passwords: a password is guessable and needs a
slow, salted hash to make each guess costly, but 256 random bits cannot be guessed however fast
the hash, so one SHA-256 per request keeps the check cheap and a leaked dump useless. No
``SECRET_KEY`` enters the hash, so rotating that key leaves every token working.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from inspections.access import roles
from inspections.access.models import ApiToken, ApiTokenScope, AuthEventKind
from inspections.access.services.auth_events import auth_event_record
from inspections.access.services.people import person_create
from inspections.errors import PermissionDenied

SECRET_PREFIX = "sqc_"  # nosec B105 - the marker every secret starts with, not a secret
PREFIX_LENGTH = 12  # "sqc_" and 8 random characters; a migrated key's first 12 hex digits
NAME_MAX_LENGTH = 100
# last_used_at is written at most this often per token: no database write per request.
LAST_USE_RESOLUTION = timedelta(minutes=1)


class ApiTokenError(ValueError):
    """A token cannot be made or revoked as asked; the message says why."""


class ApiTokenRefused(Exception):
    """A presented secret does not authenticate; the message is safe to show the caller."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def api_token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def api_token_owner_is_api_only(user) -> bool:
    """An account for a machine, not a person: in the role group ``integrator`` and no other,
    neither staff nor superuser (as ``create_api_token --create --role integrator`` makes them).
    A token for it can upload and read, never review or manage models as someone."""
    if user.is_superuser or user.is_staff:
        return False
    return roles.user_roles(user) == {roles.INTEGRATOR}


def api_token_owner_check(*, user, actor) -> None:
    """Refuse a token that would let ``actor`` act as another person.

    A token is a full login as its owner, so an ML admin may make one only for themself or for an
    API-only account; one for a person (a QA user, another admin, a superuser) only a superuser may
    make. ``actor=None`` is the operator on the command line (``create_api_token``), who has the
    database already and is allowed.
    """
    if actor is None or not actor.pk or actor.is_superuser or actor.pk == user.pk:
        return
    if api_token_owner_is_api_only(user):
        return
    raise PermissionDenied(
        f"A token for {user.get_username()!r} would act as that person: only a superuser may make it. "
        "Make tokens for yourself or for API-only accounts (role integrator only).",
        code="token_owner_not_allowed")


def api_token_create(*, user, name: str, scope: str = ApiTokenScope.ADMIN, expires_at=None,
                     actor=None, ip_address: str | None = None) -> IssuedToken:
    """A new token for ``user``; the returned secret is the only copy there will ever be.

    Raises ``ApiTokenError`` for bad input and ``PermissionDenied`` (``token_owner_not_allowed``)
    when ``actor`` may not make a token for ``user`` (``api_token_owner_check``)."""
    name = (name or "").strip()
    if not name:
        raise ApiTokenError("Give the token a name (what uses it, e.g. 'camera line 3').")
    if len(name) > NAME_MAX_LENGTH:
        raise ApiTokenError(f"The name is longer than {NAME_MAX_LENGTH} characters.")
    if scope not in ApiTokenScope.values:
        raise ApiTokenError(f"Unknown scope {scope!r}; one of {', '.join(ApiTokenScope.values)}.")
    if not user.is_active:
        raise ApiTokenError(f"User {user.get_username()!r} is inactive; a token would not work.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiTokenError("The expiry must lie in the future.")
    api_token_owner_check(user=user, actor=actor)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=secret[:PREFIX_LENGTH], digest=api_token_digest(secret),
            scope=scope, expires_at=expires_at, created_by=actor if actor is not None and actor.pk else None,
        )
        auth_event_record(kind=AuthEventKind.TOKEN_CREATED, user=user, actor=_other(actor, user),
                          ip_address=ip_address, detail=_describe(token) + _where(actor) + _for_person(user, actor))
    return IssuedToken(token=token, secret=secret)


def api_token_create_for_new_api_user(*, username: str, name: str, scope: str = ApiTokenScope.ADMIN,
                                      expires_at=None, actor, ip_address: str | None = None) -> IssuedToken:
    """A new API-only account ``username`` (role integrator, no password) and its first token,
    both or neither. The same rules as ``person_create`` (an ml_admin may give the role
    integrator) and ``api_token_create``."""
    with transaction.atomic():
        user = person_create(username=username, role=roles.INTEGRATOR, actor=actor, ip_address=ip_address,
                             api_only=True)
        return api_token_create(user=user, name=name, scope=scope, expires_at=expires_at, actor=actor,
                                ip_address=ip_address)


def api_token_revoke(*, token: ApiToken, actor=None, ip_address: str | None = None) -> bool:
    """Revoke ``token`` from now on; False when it was revoked already (nothing changes then)."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor if actor is not None and actor.pk else None)
        if updated:
            auth_event_record(kind=AuthEventKind.TOKEN_REVOKED, user=token.user, actor=_other(actor, token.user),
                              ip_address=ip_address, detail=_describe(token) + _where(actor))
    token.refresh_from_db()
    return bool(updated)


def api_token_revoke_all(*, user, actor=None, ip_address: str | None = None) -> int:
    """Revoke every live token of ``user``; returns how many."""
    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True).select_related("user")
    return sum(api_token_revoke(token=token, actor=actor, ip_address=ip_address) for token in live)


def api_token_authenticate(secret: str, *, ip_address: str | None = None) -> ApiToken:
    """The live token whose secret this is, its user loaded (and the user's roles); raises
    ``ApiTokenRefused`` otherwise.

    Looks up by prefix, compares the SHA-256 in constant time, refuses revoked and expired
    tokens and inactive users. Notes the use (time, address) at most once a minute per token,
    and at once, with an audit event, when the address differs from the last one.
    """
    digest = api_token_digest(secret)
    token = next((c for c in _candidates(secret[:PREFIX_LENGTH]) if hmac.compare_digest(c.digest, digest)), None)
    if token is None:
        raise ApiTokenRefused("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise ApiTokenRefused("This token was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise ApiTokenRefused("This token has expired.")
    if not token.user.is_active:
        raise ApiTokenRefused("User inactive or deleted.")
    _note_use(token, now=now, ip_address=ip_address)
    return token


def _candidates(prefix: str) -> list[ApiToken]:
    """The tokens with this prefix, each with its owner and the owner's roles, from one plain
    statement: the ORM's building of the same query (token joined to user) cost more CPU than the
    hash and the query together, on every API request (profile-upload in docs/benchmarks.md)."""
    lookup = _token_lookup()
    with connection.cursor() as cursor:
        cursor.execute(lookup.sql, [*roles.ROLES, prefix])
        rows = cursor.fetchall()
    tokens: dict[int, ApiToken] = {}
    role_names: dict[int, set[str]] = {}
    for row in rows:
        values = lookup.convert(row)
        token_id = values[0]
        if token_id not in tokens:
            token = ApiToken.from_db(connection.alias, lookup.token_names, values[:lookup.split])
            token.user = lookup.user_model.from_db(connection.alias, lookup.user_names, values[lookup.split:-1])
            tokens[token_id] = token
            role_names[token_id] = set()
        if values[-1] is not None:
            role_names[token_id].add(values[-1])
    for token_id, token in tokens.items():
        roles.user_roles_known(token.user, role_names[token_id])
    return list(tokens.values())


@dataclass(frozen=True)
class _TokenLookup:
    sql: str
    token_names: list[str]
    user_names: list[str]
    user_model: type
    split: int  # token columns first, then the user's, then one role group name (or NULL)
    converters: list[tuple[int, list, object]]  # (column, the ORM's converters, their expression)

    def convert(self, row) -> list:
        values = list(row)
        for position, functions, expression in self.converters:
            for function in functions:
                values[position] = function(values[position], expression, connection)
        return values


@functools.cache
def _token_lookup() -> _TokenLookup:
    """The statement and the column conversions the ORM would apply, built once from the models'
    metadata (so a field added to either model is read too)."""
    from django.contrib.auth import get_user_model

    quote = connection.ops.quote_name
    user_model = get_user_model()
    token_fields, user_fields = ApiToken._meta.concrete_fields, user_model._meta.concrete_fields
    columns = [f"t.{quote(f.column)}" for f in token_fields] + [f"u.{quote(f.column)}" for f in user_fields]
    tokens, users = quote(ApiToken._meta.db_table), quote(user_model._meta.db_table)
    owner, user_id = quote(ApiToken._meta.get_field("user").column), quote(user_model._meta.pk.column)
    # Names from the models' metadata only; every value is a parameter.
    sql = (f"SELECT {', '.join(columns)}, g.name FROM {tokens} t "  # nosec B608
           f"JOIN {users} u ON u.{user_id} = t.{owner} "
           f"LEFT JOIN {roles.ROLE_GROUPS_SQL} ON ug.user_id = u.{user_id} WHERE t.prefix = %s")
    converters = []
    for position, field in enumerate([*token_fields, *user_fields]):
        expression = field.get_col(field.model._meta.db_table)
        functions = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if functions:
            converters.append((position, functions, expression))
    return _TokenLookup(sql=sql, token_names=[f.attname for f in token_fields],
                        user_names=[f.attname for f in user_fields], user_model=user_model,
                        split=len(token_fields), converters=converters)


def _note_use(token: ApiToken, *, now, ip_address: str | None) -> None:
    new_address = ip_address is not None and ip_address != token.last_used_ip
    stale = token.last_used_at is None or now - token.last_used_at >= LAST_USE_RESOLUTION
    if not (new_address or stale):
        return
    fields = {"last_used_at": now}
    if ip_address is not None:
        fields["last_used_ip"] = ip_address
    ApiToken.objects.filter(pk=token.pk).update(**fields)
    if new_address:
        auth_event_record(kind=AuthEventKind.TOKEN_NEW_ADDRESS, user=token.user, ip_address=ip_address,
                          detail=_describe(token) + (f", before from {token.last_used_ip}" if token.last_used_ip
                                                     else ", first use"))
    for field, value in fields.items():
        setattr(token, field, value)


def _describe(token: ApiToken) -> str:
    return f"token {token.name!r} ({token.prefix}…, scope {token.scope})"


def _where(actor) -> str:
    return " on a page" if actor is not None and actor.pk else " on the command line"


def _for_person(user, actor) -> str:
    """Marks in the audit trail a token a superuser made for another person (not an API-only account)."""
    if actor is None or not actor.pk or actor.pk == user.pk or api_token_owner_is_api_only(user):
        return ""
    return ", for a person by a superuser"  # the superuser is the event's actor


def _other(actor, user):
    return actor if actor is not None and actor.pk and actor.pk != user.pk else None
