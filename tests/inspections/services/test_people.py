"""Who may manage whom on the People page (inspections.access.services.people): a superuser every
account but their own; an ml_admin ordinary accounts only (no superuser, staff or ml_admin, not
their own) and only the roles qa, viewer and integrator; every change in the audit trail."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from inspections.access.models import AuthEvent, AuthEventKind
from inspections.access.roles import ROLES, user_roles
from inspections.access.services.api_tokens import api_token_create_for_new_api_user
from inspections.access.services.people import (
    password_link_make,
    person_create,
    person_deactivate,
    person_reactivate,
    person_role_set,
)
from inspections.errors import ApplicationError, Conflict, PermissionDenied
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def role_groups():
    for name in ROLES:
        Group.objects.get_or_create(name=name)


@pytest.fixture
def admin():
    return UserFactory(username="ada", roles=["ml_admin"])


@pytest.fixture
def superuser():
    user = UserFactory(username="root", is_superuser=True, is_staff=True)
    user.save()
    return user


def _fresh(user):
    user.refresh_from_db()
    user.__dict__.pop("_steelqc_roles", None)
    return user


def test_an_ml_admin_makes_a_qa_login_without_a_password_and_it_is_audited(admin):
    person = person_create(username="anna", role="qa", actor=admin, ip_address="10.0.0.5")
    assert user_roles(_fresh(person)) == {"qa"}
    assert person.is_active and not person.has_usable_password()
    assert not person.is_staff and not person.is_superuser
    created = AuthEvent.objects.get(kind=AuthEventKind.USER_CREATED)
    assert (created.user_id, created.actor_id, created.ip_address, created.detail) == (
        person.pk, admin.pk, "10.0.0.5", "role qa")


@pytest.mark.parametrize("role", ["qa", "viewer", "integrator"])
def test_an_ml_admin_gives_the_roles_below_their_own(admin, role):
    assert user_roles(_fresh(person_create(username=f"p-{role}", role=role, actor=admin))) == {role}


def test_an_ml_admin_may_not_make_an_ml_admin(admin):
    with pytest.raises(PermissionDenied, match="Only a superuser may give the role ml_admin"):
        person_create(username="eve", role="ml_admin", actor=admin)
    assert not AuthEvent.objects.filter(kind=AuthEventKind.USER_CREATED).exists()


def test_a_superuser_makes_an_ml_admin(superuser):
    person = person_create(username="mia", role="ml_admin", actor=superuser)
    assert user_roles(_fresh(person)) == {"ml_admin"}


@pytest.mark.parametrize("kind", ["superuser", "staff", "ml_admin"])
def test_an_ml_admin_may_not_touch_a_protected_account(admin, kind):
    if kind == "superuser":
        other = UserFactory(is_superuser=True, is_staff=True)
        other.save()
    elif kind == "staff":
        other = UserFactory(is_staff=True, roles=["qa"])
    else:
        other = UserFactory(roles=["ml_admin"])
    for change in (lambda: person_role_set(person=other, role="viewer", actor=admin),
                   lambda: person_deactivate(person=other, actor=admin),
                   lambda: password_link_make(person=other, actor=admin)):
        with pytest.raises(PermissionDenied, match="only a superuser may change it"):
            change()
    assert _fresh(other).is_active


def test_nobody_changes_their_own_account(admin, superuser):
    with pytest.raises(PermissionDenied, match="your own account"):
        person_role_set(person=admin, role="qa", actor=admin)
    with pytest.raises(PermissionDenied, match="your own account"):
        person_deactivate(person=superuser, actor=superuser)


def test_a_superuser_changes_an_ml_admins_role(superuser, admin):
    assert person_role_set(person=admin, role="viewer", actor=superuser) is True
    assert user_roles(_fresh(admin)) == {"viewer"}


def test_setting_a_role_replaces_the_others_and_the_trail_says_who(admin, client):
    person = UserFactory(roles=["qa", "viewer"])
    client.force_login(admin)  # the role events take their actor from the request being served
    assert person_role_set(person=person, role="integrator", actor=admin) is True
    assert user_roles(_fresh(person)) == {"integrator"}
    assert person_role_set(person=person, role="integrator", actor=admin) is False
    added = AuthEvent.objects.filter(kind=AuthEventKind.ROLE_ADDED, user=person).latest("id")
    assert added.detail == "role integrator"
    removed = {e.detail for e in AuthEvent.objects.filter(kind=AuthEventKind.ROLE_REMOVED, user=person)}
    assert removed == {"role qa", "role viewer"}


def test_deactivate_then_reactivate_are_audited_once_each(admin):
    person = UserFactory(roles=["qa"])
    assert person_deactivate(person=person, actor=admin) is True
    assert person_deactivate(person=person, actor=admin) is False
    assert not _fresh(person).is_active
    assert person_reactivate(person=person, actor=admin) is True
    assert _fresh(person).is_active
    kinds = list(AuthEvent.objects.filter(user=person).exclude(kind=AuthEventKind.ROLE_ADDED)
                 .order_by("id").values_list("kind", flat=True))
    assert kinds == [AuthEventKind.USER_DEACTIVATED, AuthEventKind.USER_REACTIVATED]


def test_a_password_link_is_a_reset_token_for_that_person_and_is_audited(admin):
    person = person_create(username="otto", role="viewer", actor=admin)
    link = password_link_make(person=person, actor=admin)
    assert force_str(urlsafe_base64_decode(link.uidb64)) == str(person.pk)
    assert default_token_generator.check_token(person, link.token)
    event = AuthEvent.objects.get(kind=AuthEventKind.PASSWORD_LINK)
    assert (event.user_id, event.actor_id) == (person.pk, admin.pk)


def test_no_password_link_for_a_deactivated_account(admin):
    person = UserFactory(roles=["qa"], is_active=False)
    with pytest.raises(ApplicationError, match="deactivated"):
        password_link_make(person=person, actor=admin)


@pytest.mark.parametrize("name", ["", "two words", "x" * 151])
def test_a_bad_user_name_is_refused(admin, name):
    with pytest.raises(ApplicationError) as refused:
        person_create(username=name, role="qa", actor=admin)
    assert refused.value.code == "invalid_username"


def test_a_taken_user_name_is_a_conflict_whatever_its_case(admin):
    UserFactory(username="Anna")
    with pytest.raises(Conflict):
        person_create(username="anna", role="qa", actor=admin)


def test_a_qa_user_gives_no_role():
    with pytest.raises(PermissionDenied):
        person_create(username="x", role="viewer", actor=UserFactory(roles=["qa"]))


def test_an_api_only_account_and_its_token_are_made_together_or_not_at_all(admin):
    issued = api_token_create_for_new_api_user(username="line-9-camera", name="line 9", scope="upload", actor=admin)
    owner = _fresh(issued.token.user)
    assert owner.username == "line-9-camera" and user_roles(owner) == {"integrator"}
    assert not owner.has_usable_password()
    with pytest.raises(ValueError):  # a bad token name: no account is left behind
        api_token_create_for_new_api_user(username="line-10-camera", name="", actor=admin)
    assert not type(admin).objects.filter(username="line-10-camera").exists()
