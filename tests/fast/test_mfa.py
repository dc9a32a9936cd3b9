"""Second-factor rules called directly (accounts/mfa/, staff/mfa.py): codes, storage, policy, step-up."""

from __future__ import annotations

import time

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.utils import timezone

from accounts.mfa import crypto
from accounts.mfa.policy import mfa_required_for
from accounts.mfa.services import (
    _totp_step,
    code_normalise,
    step_up_check,
    totp_enrolment_begin,
    totp_enrolment_confirm,
)
from accounts.models import Authenticator
from core.api import ServiceError
from staff.mfa import mfa_policy_set
from staff.models import MfaPolicy, StaffMember
from tests.fast.conftest import make_staff


def test_codes_are_read_the_way_people_type_them():
    assert code_normalise("１２３ ４５６") == "123456"  # full-width digits, a space
    assert code_normalise(" 7kq2m-xr4tp\n") == "7KQ2MXR4TP"


def test_a_totp_code_matches_its_step_and_one_either_side_only():
    secret = pyotp.random_base32(32)
    totp, now = pyotp.TOTP(secret), timezone.now()
    step = totp.timecode(now)
    for offset in (-1, 0, 1):
        assert _totp_step(secret, totp.generate_otp(step + offset), now) == step + offset
    assert _totp_step(secret, totp.generate_otp(step + 2), now) is None
    assert _totp_step(secret, totp.generate_otp(step - 2), now) is None
    assert _totp_step(secret, "１２３４５６", now) is None  # not normalised: no ASCII digits, no match
    assert _totp_step(secret, "12345", now) is None


def test_secrets_are_encrypted_with_the_configured_key_and_rotate(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MFA_ENCRYPTION_KEYS = [old]
    sealed = crypto.secret_encrypt("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    settings.MFA_ENCRYPTION_KEYS = [new, old]  # rotation: the new key encrypts, the old one still decrypts
    assert crypto.secret_decrypt(sealed) == "JBSWY3DPEHPK3PXP"
    settings.MFA_ENCRYPTION_KEYS = [new]
    with pytest.raises(InvalidToken):
        crypto.secret_decrypt(sealed)


def test_enrolment_needs_the_users_own_token_and_a_right_code(in_hospital, hospital_a):
    nurse, other = make_staff(hospital_a).user, make_staff(hospital_a).user
    enrolment = totp_enrolment_begin(user=nurse)
    code = pyotp.TOTP(enrolment.secret).now()
    with pytest.raises(ServiceError) as refused:
        totp_enrolment_confirm(user=other, enrolment_token=enrolment.enrolment_token, code=code)
    assert refused.value.code == "mfa_enrolment_invalid"
    authenticator, codes = totp_enrolment_confirm(user=nurse, enrolment_token=enrolment.enrolment_token, code=code)
    assert authenticator.last_used_step is not None  # the confirming code is used
    assert len(set(codes)) == len(codes) == 10
    with pytest.raises(ServiceError) as again:
        totp_enrolment_begin(user=nurse)
    assert again.value.code == "mfa_already_enrolled"
    assert Authenticator.objects.filter(user=nurse).count() == 2


def test_the_policy_says_who_must_have_a_second_factor(in_hospital, hospital_a):
    doctor, nurse = make_staff(hospital_a, StaffMember.Role.DOCTOR), make_staff(hospital_a, StaffMember.Role.NURSE)
    assert not mfa_required_for(doctor.user)
    mfa_policy_set(mode=MfaPolicy.Mode.ROLES, roles=[StaffMember.Role.DOCTOR], actor=None)
    assert mfa_required_for(doctor.user) and not mfa_required_for(nurse.user)
    mfa_policy_set(mode=MfaPolicy.Mode.ALL, roles=[], actor=None)
    assert mfa_required_for(nurse.user)
    with pytest.raises(ServiceError):
        mfa_policy_set(mode=MfaPolicy.Mode.ROLES, roles=[], actor=None)


def test_step_up_needs_a_recent_second_factor_only_with_mfa(in_hospital, hospital_a, settings):
    nurse = make_staff(hospital_a).user
    step_up_check(user=nurse, token={})  # no MFA: nothing to step up to
    enrolment = totp_enrolment_begin(user=nurse)
    totp_enrolment_confirm(
        user=nurse, enrolment_token=enrolment.enrolment_token, code=pyotp.TOTP(enrolment.secret).now()
    )
    with pytest.raises(ServiceError) as refused:
        step_up_check(user=nurse, token={})
    assert refused.value.code == "reauthentication_required" and refused.value.status == 403
    step_up_check(user=nurse, token={"mfa_at": int(time.time())})
    old = int(time.time() - settings.MFA_STEP_UP_WINDOW.total_seconds() - 5)
    with pytest.raises(ServiceError):
        step_up_check(user=nurse, token={"mfa_at": old})
