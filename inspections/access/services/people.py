"""People: logins with a role, made and managed on the People page (and API-only accounts on the
API tokens page), every change in the auth audit trail.

Who may manage whom follows the rule of API tokens (``api_token_owner_check``): nobody gains,
through a page, power over an account with more rights than the ones they may hand out.

- **A superuser** may manage every account except their own: make people with any role, change
  roles (ml_admin included), deactivate and reactivate, make password links.
- **An ml_admin** may manage ordinary accounts only: not a superuser, not staff (who can open the
  Django admin), not another ml_admin, not their own. They give the roles qa, viewer and
  integrator, never ml_admin.
- **Nobody** changes their own account here: no one raises their own role or locks themself out.
- The page never makes or unmakes superusers or staff: ``manage.py createsuperuser`` and the
  Django admin do that, for superusers.

A password link is Django's password-reset token for the account, shown to copy (nothing is
mailed). Unlike a token made for a person, using it is visible to that person: it replaces their
password. It stops working once used, when the person logs in, when their password changes, or
after ``PASSWORD_RESET_TIMEOUT``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from inspections.access import roles
from inspections.access.models import AuthEventKind
from inspections.access.services.auth_events import auth_event_record
from inspections.errors import ApplicationError, Conflict, PermissionDenied

# The roles an ml_admin may give; every role is a superuser's to give.
ROLES_AN_ML_ADMIN_GIVES = (roles.QA, roles.VIEWER, roles.INTEGRATOR)


@dataclass(frozen=True)
class PasswordLink:
    """The parts of the password-reset URL (``password-reset-confirm`` with these arguments)."""

    uidb64: str
    token: str


def roles_given_by(actor) -> tuple[str, ...]:
    """The roles ``actor`` may give on the People page (empty: none)."""
    if actor.is_superuser:
        return roles.ROLES
    if roles.can_manage_models(actor):
        return ROLES_AN_ML_ADMIN_GIVES
    return ()


def person_protected(person) -> bool:
    """An account only a superuser may manage: a superuser, staff, or an ml_admin."""
    return person.is_superuser or person.is_staff or roles.ML_ADMIN in roles.user_roles(person)


def person_manage_refusal(*, actor, person) -> str:
    """Why ``actor`` may not manage ``person`` on the People page; empty when they may."""
    if actor.pk == person.pk:
        return "You cannot change your own account here; ask another administrator."
    if actor.is_superuser:
        return ""
    if not roles.can_manage_models(actor):
        return "People are managed by the role ml_admin."
    if person_protected(person):
        return (f"{person.get_username()!r} is a superuser, staff or ml_admin account: "
                "only a superuser may change it.")
    return ""


def person_manage_check(*, actor, person) -> None:
    refusal = person_manage_refusal(actor=actor, person=person)
    if refusal:
        raise PermissionDenied(refusal, code="person_not_allowed")


def role_give_check(*, actor, role: str) -> None:
    if role not in roles.ROLES:
        raise ApplicationError(f"Unknown role {role!r}; one of {', '.join(roles.ROLES)}.", code="invalid_role")
    if role not in roles_given_by(actor):
        raise PermissionDenied(f"Only a superuser may give the role {role}.", code="role_not_allowed")


def person_create(*, username: str, role: str, actor, ip_address: str | None = None, api_only: bool = False):
    """A new active account with ``role`` and no usable password (a password link or, for an
    API-only account, a token gives it a way in). Raises ``ApplicationError`` for a bad name,
    ``Conflict`` when the name is taken, ``PermissionDenied`` when ``actor`` may not give ``role``."""
    User = get_user_model()
    username = (username or "").strip()
    _username_check(User, username)
    role_give_check(actor=actor, role=role)
    with transaction.atomic():
        if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
            raise Conflict(f"There is already a user {username!r}.", code="user_exists")
        person = User(**{User.USERNAME_FIELD: username})
        person.set_unusable_password()
        person.save()
        auth_event_record(kind=AuthEventKind.USER_CREATED, user=person, actor=actor, ip_address=ip_address,
                          detail=f"role {role}" + (", API only (no password)" if api_only else ""))
        person.groups.add(_role_group(role))  # the role_added event comes from the audit receiver
    return person


def person_role_set(*, person, role: str, actor, ip_address: str | None = None) -> bool:
    """Make ``role`` the person's only role; False when it already was. The role_added and
    role_removed events are written by the audit trail's receiver on the group change."""
    person_manage_check(actor=actor, person=person)
    role_give_check(actor=actor, role=role)
    with transaction.atomic():
        current = set(person.groups.filter(name__in=roles.ROLES).values_list("name", flat=True))
        if current == {role}:
            return False
        others = [name for name in current if name != role]
        if others:
            person.groups.remove(*Group.objects.filter(name__in=others))
        if role not in current:
            person.groups.add(_role_group(role))
    person.__dict__.pop("_steelqc_roles", None)
    return True


def person_deactivate(*, person, actor, ip_address: str | None = None) -> bool:
    """Refuse every login, session and token of ``person`` from now on (nothing is deleted:
    reviews keep their author, tokens come back with ``person_reactivate``); False when inactive already."""
    return _person_active_set(person=person, active=False, actor=actor, ip_address=ip_address)


def person_reactivate(*, person, actor, ip_address: str | None = None) -> bool:
    return _person_active_set(person=person, active=True, actor=actor, ip_address=ip_address)


def password_link_make(*, person, actor, ip_address: str | None = None) -> PasswordLink:
    """A password-reset link for ``person`` to set (or replace) their password, audited."""
    person_manage_check(actor=actor, person=person)
    if not person.is_active:
        raise ApplicationError(f"{person.get_username()!r} is deactivated; reactivate the account first.",
                               code="user_inactive")
    link = PasswordLink(uidb64=urlsafe_base64_encode(force_bytes(person.pk)),
                        token=default_token_generator.make_token(person))
    auth_event_record(kind=AuthEventKind.PASSWORD_LINK, user=person, actor=actor, ip_address=ip_address)
    return link


def _person_active_set(*, person, active: bool, actor, ip_address: str | None) -> bool:
    person_manage_check(actor=actor, person=person)
    User = get_user_model()
    with transaction.atomic():
        changed = User.objects.filter(pk=person.pk, is_active=not active).update(is_active=active)
        if changed:
            auth_event_record(kind=AuthEventKind.USER_REACTIVATED if active else AuthEventKind.USER_DEACTIVATED,
                              user=person, actor=actor, ip_address=ip_address)
    person.is_active = active
    return bool(changed)


def _username_check(User, username: str) -> None:
    if not username:
        raise ApplicationError("Give a user name.", code="invalid_username")
    max_length = User._meta.get_field(User.USERNAME_FIELD).max_length
    if len(username) > max_length:
        raise ApplicationError(f"The user name is longer than {max_length} characters.", code="invalid_username")
    try:
        User.username_validator(username)
    except ValidationError:
        raise ApplicationError(f"{username!r} is not a valid user name: letters, digits and @ . + - _ only.",
                               code="invalid_username") from None


def _role_group(role: str) -> Group:
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise ApplicationError(f"Role group {role!r} does not exist; run `manage.py migrate` first.",
                               code="role_group_missing")
    return group
