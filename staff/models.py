"""Who works in a hospital, in its schema (TENANT_APPS): staff members and their roles, departments, invitations."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.crossschema import HospitalGroupObjectPermission, HospitalUserObjectPermission


class StaffMember(models.Model):
    """The hospital-side profile of an account: its role in this hospital.

    The account itself lives in the public schema; this row lives and dies with
    the hospital's schema. Accounts are deactivated, not deleted, so the
    reference protects rather than cascades (in Python: no constraint across
    schemas, core/crossschema.py).
    """

    class Role(models.TextChoices):
        HOSPITAL_ADMIN = "hospital_admin", "Hospital admin"
        DOCTOR = "doctor", "Doctor"
        NURSE = "nurse", "Nurse"
        RECEPTIONIST = "receptionist", "Receptionist"
        # Reads the hospital's access logs and reviews break-glass openings; sees no patient record.
        PRIVACY_OFFICER = "privacy_officer", "Privacy officer"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )  # public row: core/crossschema.py
    role = models.CharField(max_length=32, choices=Role.choices)
    department = models.ForeignKey("Department", null=True, blank=True, on_delete=models.SET_NULL, related_name="staff")
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.is_active and self.role == self.Role.HOSPITAL_ADMIN


# Roles with no clinical grant: on no care team, heading no department, never seeing a clinical record.
NON_CLINICAL_ROLES = frozenset({StaffMember.Role.RECEPTIONIST, StaffMember.Role.PRIVACY_OFFICER})


class Department(models.Model):
    """A ward or service: where staff work, with a head. The head may view every patient assigned to it
    (a guardian grant on the department; `hospitals` reads it when it decides who may see a patient).
    """

    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=32, unique=True)
    head = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]
        permissions = [("view_department_patients", "Can view the patients of the department")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


# guardian's direct-foreign-key permission tables for departments (a real FK, not a text object_pk).


class DepartmentUserObjectPermission(HospitalUserObjectPermission):
    content_object = models.ForeignKey(Department, on_delete=models.CASCADE)


class DepartmentGroupObjectPermission(HospitalGroupObjectPermission):
    content_object = models.ForeignKey(Department, on_delete=models.CASCADE)


class Invitation(models.Model):
    """An invitation to join this hospital with a role; accepted once, through a secret link.

    Only a hash of the token is stored. Lives in the hospital's schema, so a
    token presented at another hospital finds nothing there.
    """

    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=32, choices=StaffMember.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,  # public row: core/crossschema.py
        help_text="Empty: invited by the platform at onboarding.",
    )
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.email} as {self.role}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class MfaPolicy(models.Model):
    """Who at this hospital must log in with a second factor (accounts/mfa/policy.py asks `staff.mfa`).

    One row per hospital schema (absent: optional), in the schema because it is the hospital's rule about
    its own staff, set by its admins, and read with their roles.
    """

    class Mode(models.TextChoices):
        OPTIONAL = "optional", "Optional"
        ROLES = "required_for_roles", "Required for some roles"
        ALL = "required_for_all", "Required for everyone"

    singleton = models.BooleanField(default=True, unique=True, editable=False)  # at most one row
    mode = models.CharField(max_length=32, choices=Mode.choices, default=Mode.OPTIONAL)
    roles = models.JSONField(default=list, blank=True, help_text="With `required_for_roles`: StaffMember roles.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.mode} {self.roles or ''}".strip()
