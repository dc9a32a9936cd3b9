"""Reads of the audit trail of the schema being called."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_event_list(
    *, actor: str = "", action: str = "", since: datetime | None = None, until: datetime | None = None
) -> QuerySet[AuditEvent]:
    """Newest first; `actor` is an account id (digits) or an email (any case)."""
    events = AuditEvent.objects.all()
    if actor:
        events = (
            events.filter(actor_id=int(actor))
            if actor.isascii() and actor.isdigit()
            else events.filter(actor_email__iexact=actor)
        )
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(created__gte=since)
    if until is not None:
        events = events.filter(created__lt=until)
    return events


def audit_target_history(
    *,
    target_type: str,
    target_id: str,
    actor: str = "",
    action: str = "",
    via: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """One record's events, newest first (the index `audit_target_history` serves it in this order);
    `via` keeps the events made under that grant (the `via` list in their detail)."""
    events = audit_event_list(actor=actor, action=action, since=since, until=until).filter(
        target_type=target_type, target_id=target_id
    )
    if via:
        events = events.filter(detail__via__contains=[via])
    return events
