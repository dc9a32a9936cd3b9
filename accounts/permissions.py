from rest_framework.permissions import BasePermission

from core.tenancy import request_hospital_id, user_belongs_here


class IsTenantMember(BasePermission):
    """The default permission: an authenticated user of the hospital (or platform) being called."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user_belongs_here(user, request))


class IsPlatformStaff(BasePermission):
    """Platform staff, on the platform domain: an account of no hospital, with `is_staff`.

    Said outright rather than implied by "a member of the public tenant" (IsTenantMember there), so a
    platform endpoint stays closed even if routed where a hospital's staff could reach it.
    """

    message = "Only platform staff may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_staff
            and user.hospital_id is None
            and request_hospital_id(request) is None
        )
