"""Reads of a hospital's records, already scoped to who is asking (constant query counts)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import OuterRef, Q, QuerySet, Subquery
from guardian.shortcuts import get_objects_for_user

from hospitals.models import BreakGlassGrant, ClinicalNote, Patient
from hospitals.permissions import BREAK_GLASS_ROLES, VIEW, live_break_glass
from staff.models import NON_CLINICAL_ROLES, Department, StaffMember
from staff.permissions import DEPARTMENT_PATIENTS


def patient_list(*, staff: StaffMember, search: str = "", department_id: int | None = None) -> QuerySet[Patient]:
    """The patients `staff` may view: guardian grants on patients, plus the patients of departments it heads
    (never for a receptionist: a headship is clinical, see staff.services.department_set_head), plus those its
    live break-glass grants open (their deadline compared with the database's clock in this same query).

    A constant number of queries whatever the number of rows: guardian's helper gives a subquery.
    """
    patients = Patient.objects.select_related("department")
    if not staff.is_admin:
        granted = get_objects_for_user(
            staff.user, f"hospitals.{VIEW}", patients, use_groups=False, with_superuser=False, accept_global_perms=False
        )
        headed = (
            []
            if staff.role in NON_CLINICAL_ROLES
            else list(
                get_objects_for_user(
                    staff.user,
                    f"staff.{DEPARTMENT_PATIENTS}",
                    Department,
                    use_groups=False,
                    with_superuser=False,
                    accept_global_perms=False,
                ).values_list("pk", flat=True)
            )
        )  # a handful at most: one small query
        if staff.role in BREAK_GLASS_ROLES:
            # The live break-glass grants beside guardian's: one more hashed IN (...) probed like the first
            # (bench patients), the deadline compared in this same query.
            granted = granted | patients.filter(pk__in=live_break_glass(staff).values("patient_id"))
        # Most staff head nothing: then the grants alone are the list.
        patients = patients.filter(Q(pk__in=granted.values("pk")) | Q(department_id__in=headed)) if headed else granted
    if search:
        for term in search.split():
            patients = patients.filter(
                Q(mrn__iexact=term) | Q(first_name__icontains=term) | Q(last_name__icontains=term)
            )
    if department_id is not None:
        patients = patients.filter(department_id=department_id)
    return patients


def patient_get(*, staff: StaffMember, pk: int) -> Patient | None:
    """One patient `staff` may view, carrying the caller's live break-glass grant (`break_glass_id`,
    `break_glass_reason`, None if none) for `permissions.patient_access`: one query for both."""
    live = live_break_glass(staff).filter(patient=OuterRef("pk")).order_by("-expires_at")
    return (
        patient_list(staff=staff)
        .annotate(
            break_glass_id=Subquery(live.values("id")[:1]), break_glass_reason=Subquery(live.values("reason")[:1])
        )
        .filter(pk=pk)
        .first()
    )


def break_glass_list(
    *,
    state: str = "",
    staff_id: int | None = None,
    patient_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[BreakGlassGrant]:
    """The review queue, newest first: `state` "open" (not yet reviewed) or "closed" (reviewed); openings
    between `since` and `until`."""
    grants = BreakGlassGrant.objects.select_related("staff__user", "patient", "reviewed_by__user")
    if state:
        grants = grants.filter(reviewed_at__isnull=state == "open")
    if staff_id is not None:
        grants = grants.filter(staff_id=staff_id)
    if patient_id is not None:
        grants = grants.filter(patient_id=patient_id)
    if since is not None:
        grants = grants.filter(opened_at__gte=since)
    if until is not None:
        grants = grants.filter(opened_at__lt=until)
    return grants


def patient_notes(*, patient: Patient) -> QuerySet[ClinicalNote]:
    return patient.notes.select_related("author__user")
