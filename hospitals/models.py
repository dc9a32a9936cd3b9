"""A hospital's patient records, in its schema (TENANT_APPS); who works there is `staff`'s."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.crossschema import HospitalGroupObjectPermission, HospitalUserObjectPermission
from staff.models import Department, StaffMember


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


class AccessPolicy(models.Model):
    """The hospital's clinical access settings: one row per hospital schema (pk 1), made on first read."""

    break_glass_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(24 * 60)],
        help_text="How long an emergency (break-glass) access lasts.",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="hospitals_accesspolicy_singleton"),
            models.CheckConstraint(
                condition=Q(break_glass_minutes__gte=5, break_glass_minutes__lte=24 * 60),
                name="hospitals_accesspolicy_minutes_range",
            ),
        ]

    def __str__(self) -> str:
        return f"break glass {self.break_glass_minutes} min"


class BreakGlassGrant(models.Model):
    """Emergency access to a patient by a clinician off its care team, until `expires_at` (checked at access
    time by hospitals.permissions and hospitals.selectors, so it ends on time whether or not a task ran).

    Kept after it ends: it is what the review queue reviews. `ended_at` is set by the sweep that ends expired
    grants (hospitals.tasks) and says the end was recorded, not when access ended (that is `expires_at`).
    """

    class Outcome(models.TextChoices):
        JUSTIFIED = "justified", "Justified"
        NOT_JUSTIFIED = "not_justified", "Not justified"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="break_glass_grants")
    staff = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="break_glass_grants")
    reason = models.TextField()
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    review_comment = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            # The access check: this member's live grant on this patient (and the list's: all its live grants).
            models.Index(fields=["staff", "patient", "expires_at"], name="hospitals_bg_staff_patient"),
            models.Index(fields=["patient", "opened_at"], name="hospitals_bg_patient"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=F("opened_at")), name="hospitals_bg_expires_after"),
            # Reviewed means an outcome, a reviewer and a time, together.
            models.CheckConstraint(
                condition=(Q(outcome="") & Q(reviewed_at__isnull=True) & Q(reviewed_by__isnull=True))
                | (~Q(outcome="") & Q(reviewed_at__isnull=False) & Q(reviewed_by__isnull=False)),
                name="hospitals_bg_review_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"break glass {self.pk}: {self.staff_id} on {self.patient_id}"


# guardian's direct-foreign-key permission tables: joins on a real FK instead
# of a text object_pk, so filtering 50,000 patients stays an index lookup.


class PatientUserObjectPermission(HospitalUserObjectPermission):
    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)


class PatientGroupObjectPermission(HospitalGroupObjectPermission):
    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)
