"""Account reads, scoped to whom they are for."""

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import LoginSession


def sessions_live(*, user_id: int) -> QuerySet[LoginSession]:
    """The user's sessions whose tokens are still accepted, most recently used first."""
    return LoginSession.objects.filter(user_id=user_id, ended_at__isnull=True, expires_at__gt=timezone.now()).order_by(
        "-last_used", "-created"
    )
