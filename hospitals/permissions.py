from rest_framework.permissions import BasePermission

from hospitals.models import StaffMember


class IsHospitalAdmin(BasePermission):
    """An active hospital admin of the hospital being called (checked in its schema)."""

    message = "Only the hospital's administrators may do this."

    def has_permission(self, request, view) -> bool:
        return StaffMember.objects.filter(
            user_id=request.user.pk, role=StaffMember.Role.HOSPITAL_ADMIN, is_active=True).exists()
