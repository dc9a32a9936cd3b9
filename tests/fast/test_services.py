"""Account and staff services, called directly as views, tasks and commands call them."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.utils import timezone

from accounts.services import (
    registration_unclaimed_release,
    registrations_expired_purge,
    user_create_verified,
    user_register,
)
from core.api import ServiceError
from staff import services
from staff.models import StaffMember
from tests.fast.conftest import make_staff

User = get_user_model()


def register(hospital, email: str) -> User | None:
    return user_register(
        request=RequestFactory().post("/"), hospital=hospital, email=email, password="squatter-Passw0rd-1"
    )


def test_one_address_is_two_accounts_at_two_hospitals(in_hospital, hospital_b):
    at_a = user_create_verified(hospital=in_hospital, email="Twin@Example.org", password="a-Passw0rd-long")
    at_b = user_create_verified(hospital=hospital_b, email="twin@example.org", password="b-Passw0rd-long")
    assert at_a.email == at_b.email == "twin@example.org" and at_a.pk != at_b.pk
    with pytest.raises(ValidationError, match="has an account at this hospital"):
        user_create_verified(hospital=in_hospital, email="TWIN@example.org", password="c-Passw0rd-long")


def test_platform_staff_are_a_realm_of_their_own(in_hospital):
    user_create_verified(hospital=in_hospital, email="ops@example.org", password="a-Passw0rd-long")
    staff = User.objects.create_superuser("OPS@example.org", "b-Passw0rd-long")
    assert staff.hospital is None and User.objects.get_by_natural_key("ops@EXAMPLE.org") == staff
    assert EmailAddress.objects.get(user=staff).verified  # an operator's account logs in at once


def test_a_registration_is_nothing_but_a_registration_until_verified(in_hospital):
    user = register(in_hospital, "squat@example.org")
    assert (
        user is not None
        and registration_unclaimed_release(hospital=in_hospital, email=user.email, expired_only=True) is False
    )
    assert registration_unclaimed_release(hospital=in_hospital, email=user.email, expired_only=False) is True
    assert not User.objects.filter(pk=user.pk).exists()


def test_a_verified_or_used_account_is_never_released(in_hospital):
    verified = user_create_verified(hospital=in_hospital, email="real@example.org", password="a-Passw0rd-long")
    used = register(in_hospital, "used@example.org")
    User.objects.filter(pk=used.pk).update(last_login=timezone.now())
    for user in (verified, used):
        assert registration_unclaimed_release(hospital=in_hospital, email=user.email, expired_only=False) is False


def test_the_daily_purge_frees_expired_registrations_only(in_hospital):
    fresh, expired = register(in_hospital, "fresh@example.org"), register(in_hospital, "old@example.org")
    User.objects.filter(pk=expired.pk).update(date_joined=timezone.now() - timedelta(days=30))
    assert registrations_expired_purge() == 1
    assert User.objects.filter(pk=fresh.pk).exists() and not User.objects.filter(pk=expired.pk).exists()


def test_an_invitation_takes_over_an_unverified_registration(in_hospital):
    squatter = register(in_hospital, "wanted@example.org")
    invitation = services.invitation_create(
        hospital=in_hospital, email="Wanted@example.org", role=StaffMember.Role.NURSE
    )
    assert invitation.email == "wanted@example.org"
    pending = User.objects.get(email="wanted@example.org", hospital=in_hospital)
    assert pending.pk != squatter.pk and not pending.is_active and not pending.has_usable_password()


def test_an_invitation_sees_only_this_hospitals_accounts(in_hospital, hospital_b):
    user_create_verified(hospital=hospital_b, email="elsewhere@example.org", password="b-Passw0rd-long")
    services.invitation_create(hospital=in_hospital, email="elsewhere@example.org", role=StaffMember.Role.NURSE)
    member = make_staff(in_hospital)
    with pytest.raises(ServiceError) as taken:
        services.invitation_create(hospital=in_hospital, email=member.user.email, role=StaffMember.Role.NURSE)
    assert taken.value.code == "email_taken"


def test_a_receptionist_heads_no_department_and_a_head_stays_clinical(in_hospital):
    receptionist = make_staff(in_hospital, StaffMember.Role.RECEPTIONIST)
    with pytest.raises(ServiceError) as refused:
        services.department_create(name="Cardiology", code="CARD", head=receptionist)
    assert refused.value.code == "receptionist_not_clinical"
    doctor = make_staff(in_hospital, StaffMember.Role.DOCTOR)
    services.department_create(name="Cardiology", code="CARD", head=doctor)
    with pytest.raises(ServiceError) as heads:
        services.staff_member_update(staff=doctor, role=StaffMember.Role.RECEPTIONIST)
    assert heads.value.code == "heads_department"
