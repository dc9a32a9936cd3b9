"""The fast tier: services, selectors and permission rules called directly, each test in a rollback.

No live server, no worker, no SMTP: what these tests assert happens inside one
database transaction that is rolled back afterwards, so they leave nothing
behind and need no unique names. Passwords use a cheap hasher here (the HTTP
tier keeps Argon2). Tests enter a hospital with `in_hospital`, as code outside
a request does.
"""

from __future__ import annotations

import itertools

import pytest
from django.db import connection, transaction
from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from staff.models import StaffMember
from staff.services import staff_member_create

_numbers = itertools.count(1)


class _Rollback(Exception):
    pass


@pytest.fixture(autouse=True)
def rollback(settings):
    """Everything the test writes is undone; a cheap password hasher for speed."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass
    finally:
        # SET search_path was rolled back with the transaction: make django-tenants set it again.
        connection.set_schema_to_public()


@pytest.fixture
def in_hospital(hospital_a):
    """The hospital's schema for the test's duration (as `tenant_context` does for tasks and commands)."""
    with tenant_context(hospital_a):
        yield hospital_a


def make_staff(hospital, role: str = StaffMember.Role.NURSE, email: str | None = None) -> StaffMember:
    """A verified account of `hospital` with `role` (call inside its schema)."""
    user = user_create_verified(
        hospital=hospital, email=email or f"staff{next(_numbers)}@fast.example", password="fast-tier-password-1"
    )
    return staff_member_create(user=user, role=role)
