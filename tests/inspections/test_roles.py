"""A user's roles: the role groups only, read with one statement per user object."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from inspections.access import roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_roles_are_the_role_groups_the_orm_sees_and_nothing_else():
    user = UserFactory(roles=[roles.QA, roles.INTEGRATOR])
    user.groups.add(Group.objects.get_or_create(name="line-3-operators")[0])
    expected = set(user.groups.filter(name__in=roles.ROLES).values_list("name", flat=True))
    assert roles.user_roles(user) == expected == {roles.QA, roles.INTEGRATOR}


def test_roles_of_another_user_are_not_mixed_in():
    UserFactory(roles=[roles.ML_ADMIN])
    viewer = UserFactory(roles=[roles.VIEWER])
    assert roles.user_roles(viewer) == {roles.VIEWER}
    assert not roles.can_manage_models(viewer)


def test_roles_are_read_once_per_user_object(django_assert_num_queries):
    user = UserFactory(roles=[roles.ML_ADMIN])
    with django_assert_num_queries(1):
        assert roles.can_manage_models(user) and roles.can_upload(user) and roles.can_read(user)


def test_superuser_has_every_role_and_anonymous_none(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert roles.user_roles(UserFactory.build(is_superuser=True)) == set(roles.ROLES)
        assert roles.user_roles(AnonymousUser()) == set()


def test_user_without_role_groups_has_no_roles():
    assert not roles.can_read(UserFactory())
