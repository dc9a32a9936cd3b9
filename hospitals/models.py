"""A hospital's own records, in its schema (TENANT_APPS)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


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


class Department(models.Model):
    """A ward or service. Its head may view every patient assigned to it (a guardian grant on the department)."""

    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=32, unique=True)
    head = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]
        permissions = [("view_department_patients", "Can view the patients of the department")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Patient(models.Model):
    """A patient record. Who may see it is decided per patient, by guardian grants (hospitals/permissions.py)."""

    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    mrn = models.CharField("medical record number", max_length=32, unique=True)
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=16, choices=Sex.choices, default=Sex.UNKNOWN)
    phone = models.CharField(max_length=32, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    address = models.TextField(blank=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="patients"
    )
    registered_by = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="registered_patients"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        permissions = [
            ("view_clinical", "Can view the patient's clinical record (notes, care team)"),
            ("add_note", "Can add clinical notes to the patient"),
        ]
        indexes = [models.Index(fields=["last_name", "first_name"])]

    def __str__(self) -> str:
        return f"{self.mrn} {self.last_name}, {self.first_name}"


class CareTeamMembership(models.Model):
    """A staff member on a patient's care team; the grants it gives are made and removed with it."""

    class Role(models.TextChoices):
        ATTENDING = "attending", "Attending"
        CONSULTANT = "consultant", "Consultant"
        NURSE = "nurse", "Nurse"
        OTHER = "other", "Other"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="care_team")
    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="care_teams")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OTHER)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]
        constraints = [models.UniqueConstraint(fields=["patient", "staff"], name="hospitals_careteam_unique")]

    def __str__(self) -> str:
        return f"{self.staff_id} on {self.patient_id} ({self.role})"


class ClinicalNote(models.Model):
    """A note on a patient. Never edited: a correction is a new note that names the one it corrects."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    corrects = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrections")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"note {self.pk} on {self.patient_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("Clinical notes are never edited; add a correcting note instead.")
        super().save(*args, **kwargs)


# guardian's direct-foreign-key permission tables: joins on a real FK instead
# of a text object_pk, so filtering 50,000 patients stays an index lookup.


class PatientUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)


class PatientGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)


class DepartmentUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Department, on_delete=models.CASCADE)


class DepartmentGroupObjectPermission(GroupObjectPermissionBase):
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
