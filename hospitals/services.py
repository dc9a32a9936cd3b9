from hospitals.models import StaffMember


def staff_member_create(*, user, role: str) -> StaffMember:
    """Gives an account a role in the current hospital's schema."""
    return StaffMember.objects.create(user=user, role=role)
