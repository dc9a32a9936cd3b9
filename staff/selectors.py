"""Reads of a hospital's staff."""

from __future__ import annotations

from django.db.models import QuerySet

from staff.models import StaffMember


def staff_list() -> QuerySet[StaffMember]:
    return StaffMember.objects.select_related("user", "department").order_by("user__last_name", "user__email")
