"""Whether an account must have a second factor: decided above `accounts`, asked from here.

A hospital's policy (optional, required for some roles, required for all) and its staff's roles live in the
hospital's schema, in `staff`, which sits above `accounts`. So `staff` registers its requirement here from its
AppConfig.ready() (the registry pattern of `staff.hooks`), and the login asks `mfa_required_for(user)`.

The contract of a requirement, `requirement(user) -> bool`: called in the schema of the request's hospital
(or the platform's), for an account that belongs there; True if that account must have a second factor.
An account is required to have one if any registered requirement says so.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings

# The claim of a token issued to an account that must enrol a second factor and has none: it opens only the
# views that say `mfa_enrolment_allowed = True` (accounts.authentication), until a fresh login with one.
ENROL_CLAIM = "mfa_enrol"


class Requirement(Protocol):
    def __call__(self, user) -> bool: ...


_requirements: list[Requirement] = []


def mfa_requirement_register(requirement: Requirement) -> Requirement:
    """Registers `requirement` (once: registering it again changes nothing)."""
    if requirement not in _requirements:
        _requirements.append(requirement)
    return requirement


def mfa_required_for(user) -> bool:
    return any(requirement(user) for requirement in list(_requirements))


def platform_staff_mfa_required(user) -> bool:
    """The platform's own rule (registered by AccountsConfig.ready()): platform staff must have a second
    factor where MFA_REQUIRED_FOR_PLATFORM_STAFF is on (production's default)."""
    return user.hospital_id is None and settings.MFA_REQUIRED_FOR_PLATFORM_STAFF
