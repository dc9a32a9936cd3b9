"""Reads of a hospital's records, already scoped to who is asking (constant query counts)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from hospitals.models import ClinicalNote, Patient
from hospitals.permissions import VIEW
from staff.models import Department, StaffMember
from staff.permissions import DEPARTMENT_PATIENTS


def patient_list(*, staff: StaffMember, search: str = "", department_id: int | None = None) -> QuerySet[Patient]:
    """The patients `staff` may view: guardian grants on patients, plus the patients of departments it heads
    (never for a receptionist: a headship is clinical, see staff.services.department_set_head).

    A constant number of queries whatever the number of rows: guardian's helper gives a subquery.
    """
    patients = Patient.objects.select_related("department")
    if not staff.is_admin:
        granted = get_objects_for_user(
            staff.user, f"hospitals.{VIEW}", patients, use_groups=False, with_superuser=False, accept_global_perms=False
        )
        headed = (
            []
            if staff.role == StaffMember.Role.RECEPTIONIST
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
        # Most staff head nothing: then the grants alone are the list, one semi-join.
        patients = patients.filter(Q(pk__in=granted.values("pk")) | Q(department_id__in=headed)) if headed else granted
    if search:
        for term in search.split():
            patients = patients.filter(
                Q(mrn__iexact=term) | Q(first_name__icontains=term) | Q(last_name__icontains=term)
            )
    if department_id is not None:
        patients = patients.filter(department_id=department_id)
    return patients


def patient_notes(*, patient: Patient) -> QuerySet[ClinicalNote]:
    return patient.notes.select_related("author__user")
