"""The audit trail's list API; who may read it is decided by the app that routes it, in a subclass with its
permission map (hospital admins on `/api/audit/`: hospitals/views.py; platform staff on
`/api/platform/audit/`: tenants/views.py)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from audit.models import AuditEvent
from audit.selectors import audit_event_list
from core.api import MethodPermissions

_WHEN = "Use an ISO 8601 date and time, e.g. 2026-11-30T08:00:00Z."


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "created",
            "action",
            "actor_id",
            "actor_email",
            "ip",
            "user_agent",
            "target_type",
            "target_id",
            "detail",
        )


class AuditFilterSerializer(serializers.Serializer):
    """The query parameters: an invalid one is a 400 naming it (never a 500 from the database)."""

    # An account id or an email; CharField refuses NUL (PostgreSQL text cannot hold one).
    actor = serializers.CharField(max_length=254, required=False, allow_blank=True)
    action = serializers.ChoiceField(
        choices=AuditEvent.Action.choices,
        required=False,
        error_messages={"invalid_choice": f"Unknown action; one of {', '.join(AuditEvent.Action.values)}."},
    )
    since = serializers.DateTimeField(required=False, error_messages={"invalid": _WHEN})
    until = serializers.DateTimeField(required=False, error_messages={"invalid": _WHEN})


@extend_schema_view(get=extend_schema(parameters=[AuditFilterSerializer]))
class AuditEventListView(MethodPermissions, ListAPIView):
    """The trail of the schema being called, newest first.

    Filters: ?actor= (id or email), ?action=, ?since= and ?until= (ISO 8601). An empty one is no filter.
    """

    serializer_class = AuditEventSerializer

    def get_queryset(self):
        params = self.request.query_params
        filters = AuditFilterSerializer(
            data={name: params[name] for name in AuditFilterSerializer().fields if params.get(name, "").strip()}
        )
        filters.is_valid(raise_exception=True)
        return audit_event_list(**filters.validated_data)
