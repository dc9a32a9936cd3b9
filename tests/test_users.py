"""accounts.User and its manager: email identity, one hospital, validated input."""

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from tests.support import PASSWORD, unique_email

User = get_user_model()


def test_create_user_normalises_email_and_belongs_to_its_hospital(hospital_a):
    email = unique_email("Mixed.Case", domain="Example.ORG")
    user = User.objects.create_user(f"  {email}  ", PASSWORD, hospital=hospital_a, first_name="Ann", last_name="Lee")
    assert user.email == email.lower()
    assert user.hospital == hospital_a and not user.is_staff and not user.is_superuser
    assert user.name == "Ann Lee" and user.check_password(PASSWORD)
    assert user.password.startswith("argon2")  # Argon2 is the default hasher


def test_emails_are_unique_whatever_their_case(hospital_a, hospital_b):
    email = unique_email("dup")
    User.objects.create_user(email, PASSWORD, hospital=hospital_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        # Bypass the manager's normalisation: the database itself refuses.
        User(email=email.upper(), hospital=hospital_b).save()


@pytest.mark.parametrize("email", ["", "   ", "not-an-email", "a@", None])
def test_create_user_rejects_invalid_email(hospital_a, email):
    with pytest.raises(ValueError):
        User.objects.create_user(email, PASSWORD, hospital=hospital_a)


def test_create_user_requires_a_real_hospital(hospital_a):
    with pytest.raises(ValueError):
        User.objects.create_user(unique_email(), PASSWORD)
    platform = type(hospital_a).objects.get(schema_name="public")
    with pytest.raises(ValueError):
        User.objects.create_user(unique_email(), PASSWORD, hospital=platform)
    with pytest.raises(TypeError):
        User.objects.create_user(unique_email(), PASSWORD, hospital=hospital_a, is_admin=True)


def test_create_superuser_is_platform_staff_with_no_hospital():
    user = User.objects.create_superuser(unique_email("root"), PASSWORD, first_name="Root")
    assert user.is_staff and user.is_superuser and user.hospital is None and user.is_platform_staff
    with pytest.raises(TypeError):
        User.objects.create_superuser(unique_email(), PASSWORD, hospital=None, is_admin=True)


def test_database_keeps_platform_staff_and_hospital_staff_apart(hospital_a):
    user = User.objects.create_user(unique_email(), PASSWORD, hospital=hospital_a)
    user.is_superuser = True
    with pytest.raises(IntegrityError), transaction.atomic():
        user.save()
    orphan = User(email=unique_email(), is_staff=False, hospital=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        orphan.save()


def test_user_without_password_cannot_log_in(api_a, hospital_a):
    user = User.objects.create_user(unique_email("nopass"), None, hospital=hospital_a)
    assert not user.has_usable_password()
    response = api_a.post("/accounts/login/", json={"email": user.email, "password": ""})
    assert response.status_code == 400


def test_inactive_user_gets_the_wrong_password_answer(api_a, user_a):
    user_a.is_active = False
    user_a.save()
    inactive = api_a.post("/accounts/login/", json={"email": user_a.email, "password": PASSWORD})
    wrong = api_a.post("/accounts/login/", json={"email": user_a.email, "password": "wrong-pass-0"})
    assert inactive.status_code == wrong.status_code == 400
    assert inactive.json() == wrong.json()
