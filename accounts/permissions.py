from rest_framework.permissions import BasePermission

from core.tenancy import user_belongs_here


class IsTenantMember(BasePermission):
    """The default permission: an authenticated user of the hospital (or platform) being called."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user_belongs_here(user, request))
