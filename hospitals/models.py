"""A hospital's own records, in its schema (TENANT_APPS)."""
from django.conf import settings
from django.db import models


class StaffMember(models.Model):
    """The hospital-side profile of an account: its role in this hospital.

    The account itself lives in the public schema; this row lives and dies with
    the hospital's schema. Accounts are deactivated, never deleted, so the
    cross-schema FK protects rather than cascades.
    """

    class Role(models.TextChoices):
        HOSPITAL_ADMIN = "hospital_admin", "Hospital admin"
        DOCTOR = "doctor", "Doctor"
        NURSE = "nurse", "Nurse"
        RECEPTIONIST = "receptionist", "Receptionist"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=32, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.role})"
