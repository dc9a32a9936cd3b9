"""GET /api/audit/ (hospital admins, their hospital's trail) and /api/platform/audit/ (platform staff)."""
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView

from accounts.permissions import IsTenantMember
from audit.models import AuditEvent
from hospitals.permissions import IsHospitalAdmin


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ("id", "created", "action", "actor_id", "actor_email", "ip", "user_agent", "target_type",
                  "target_id", "detail")


class AuditEventListView(ListAPIView):
    """The trail of the schema being called, newest first.

    Filters: ?actor= (id or email), ?action=, ?since= and ?until= (ISO 8601).
    """

    serializer_class = AuditEventSerializer

    def get_queryset(self):
        events = AuditEvent.objects.all()
        params = self.request.query_params
        if actor := params.get("actor", "").strip():
            events = events.filter(actor_id=int(actor)) if actor.isascii() and actor.isdigit() else \
                events.filter(actor_email__iexact=actor)
        if action := params.get("action"):
            if action not in AuditEvent.Action.values:
                choices = ", ".join(AuditEvent.Action.values)
                raise ValidationError({"action": [f"Unknown action; one of {choices}."]})
            events = events.filter(action=action)
        for name, lookup in (("since", "created__gte"), ("until", "created__lt")):
            if value := params.get(name):
                moment = parse_datetime(value) if "\x00" not in value else None
                if moment is None:
                    raise ValidationError({name: ["Use an ISO 8601 date and time, e.g. 2026-11-30T08:00:00Z."]})
                events = events.filter(**{lookup: moment})
        return events


class HospitalAuditView(AuditEventListView):
    permission_classes = [IsTenantMember & IsHospitalAdmin]


class PlatformAuditView(AuditEventListView):
    permission_classes = [IsTenantMember]  # on the platform domain: platform staff
