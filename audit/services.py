"""Recording audit events, in the schema of the hospital (or platform) where they happen."""

from __future__ import annotations

import logging

from audit.context import current_origin
from audit.models import AuditEvent

logger = logging.getLogger(__name__)


def _request_user(request):
    # DRF copies the user it authenticated onto the Django request.
    user = getattr(request, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def audit_record(
    *, action: str, actor=None, target=None, target_type: str = "", target_id="", detail: dict | None = None
) -> AuditEvent:
    """Appends one event to the current schema's trail; actor, IP and user agent default to the request's."""
    origin = current_origin.get()
    actor = actor or (_request_user(origin.request) if origin.request is not None else None)
    if target is not None:
        target_type, target_id = target._meta.label_lower, target.pk
    return AuditEvent.objects.create(
        action=action,
        actor_id=getattr(actor, "pk", None),
        actor_email=getattr(actor, "email", "") or "",
        ip=origin.ip,
        user_agent=origin.user_agent,
        target_type=target_type,
        target_id=str(target_id or ""),
        detail=detail or {},
    )
