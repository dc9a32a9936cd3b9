"""Accountability for access to patients, on a hospital subdomain: break-glass (emergency) access, its review
queue and policy, and a patient's access log (JSON pages and a streamed CSV). Thin views over
hospitals.services, hospitals.selectors and audit.selectors.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsTenantMember
from audit.models import AuditEvent
from audit.selectors import audit_target_history
from audit.services import audit_record
from core.api import MethodPermissions, Pagination
from hospitals import selectors, services
from hospitals.models import AccessPolicy, BreakGlassGrant, Patient
from hospitals.permissions import BREAK_GLASS_GRANTS, Via
from staff.models import StaffMember
from staff.permissions import ADMIN, OVERSIGHT, HasRole, staff_member_required

_WHEN = "Use an ISO 8601 date and time, e.g. 2026-11-30T08:00:00Z."
BREAK_GLASS = IsTenantMember & HasRole.of(StaffMember.Role.DOCTOR, StaffMember.Role.NURSE)


def _filters(serializer_class: type[serializers.Serializer], params) -> dict:
    """Validated query parameters (an empty one is no filter); a bad one is a 400 naming it."""
    filters = serializer_class(
        data={name: params[name] for name in serializer_class().fields if params.get(name, "").strip()}
    )
    filters.is_valid(raise_exception=True)
    return dict(filters.validated_data)


# Break-glass ------------------------------------------------------------------------------------------------


class BreakGlassGrantSerializer(serializers.ModelSerializer):
    patient_mrn = serializers.CharField(source="patient.mrn", read_only=True)
    staff_email = serializers.EmailField(source="staff.user.email", read_only=True)
    staff_name = serializers.CharField(source="staff.user.name", read_only=True)
    staff_role = serializers.ChoiceField(source="staff.role", choices=StaffMember.Role.choices, read_only=True)
    active = serializers.SerializerMethodField(help_text="Whether the access is still running.")

    class Meta:
        model = BreakGlassGrant
        fields = (
            "id",
            "patient",
            "patient_mrn",
            "staff",
            "staff_email",
            "staff_name",
            "staff_role",
            "reason",
            "opened_at",
            "expires_at",
            "active",
            "ended_at",
            "outcome",
            "review_comment",
            "reviewed_by",
            "reviewed_at",
        )
        read_only_fields = fields

    def get_active(self, grant: BreakGlassGrant) -> bool:
        return grant.expires_at > timezone.now()


class BreakGlassOpenedSerializer(BreakGlassGrantSerializer):
    permissions = serializers.SerializerMethodField(help_text="What the grant opens, until `expires_at`.")

    class Meta(BreakGlassGrantSerializer.Meta):
        fields = (*BreakGlassGrantSerializer.Meta.fields, "permissions")  # type: ignore[assignment]
        read_only_fields = fields  # type: ignore[assignment]
        ref_name = "BreakGlassOpened"

    def get_permissions(self, grant: BreakGlassGrant) -> list[str]:
        return sorted(BREAK_GLASS_GRANTS)


class BreakGlassOpenView(MethodPermissions, APIView):
    """POST {reason}: a doctor or nurse off the patient's care team opens its record in an emergency."""

    method_permissions = {"POST": BREAK_GLASS}

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BreakGlassOpen"

        reason = serializers.CharField(
            max_length=4000,
            help_text=f"Why, in at least {services.BREAK_GLASS_REASON_MIN} characters: it is audited and reviewed.",
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: BreakGlassOpenedSerializer},
        summary="Break the glass: emergency access to a patient",
        description=(
            "Doctors and nurses only (403 for any other role, whatever the patient). Grants view, clinical record "
            "and notes until `expires_at` (the hospital's access policy, 60 minutes by default). The opening and "
            "every request under it are audited with the reason; admins and privacy officers are emailed. "
            "409 `on_care_team` or `break_glass_open` when it would add nothing; 404 for an unknown patient."
        ),
    )
    def post(self, request, pk: int):
        staff = staff_member_required(request)
        patient = get_object_or_404(Patient.objects.all(), pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        grant = services.break_glass_open(staff=staff, patient=patient, reason=data.validated_data["reason"])
        return Response(BreakGlassOpenedSerializer(grant).data, status=status.HTTP_201_CREATED)


class BreakGlassFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[("open", "Not reviewed yet"), ("closed", "Reviewed")], required=False, help_text="Review state."
    )
    staff = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False, help_text="A staff member id.")
    patient = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False, help_text="A patient id.")
    since = serializers.DateTimeField(
        required=False, error_messages={"invalid": _WHEN}, help_text="Opened at or after."
    )
    until = serializers.DateTimeField(required=False, error_messages={"invalid": _WHEN}, help_text="Opened before.")


class BreakGlassListView(MethodPermissions, ListAPIView):
    """The review queue: every break-glass opening, newest first."""

    method_permissions = {"GET": OVERSIGHT}
    serializer_class = BreakGlassGrantSerializer

    @extend_schema(parameters=[BreakGlassFilterSerializer], summary="Break-glass review queue")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[BreakGlassGrant]:
        filters = _filters(BreakGlassFilterSerializer, self.request.query_params)
        return selectors.break_glass_list(
            state=filters.get("state", ""),
            staff_id=filters.get("staff"),
            patient_id=filters.get("patient"),
            since=filters.get("since"),
            until=filters.get("until"),
        )


class BreakGlassReviewView(MethodPermissions, APIView):
    """POST {outcome, comment?}: the review of one opening (once; never one's own)."""

    method_permissions = {"POST": OVERSIGHT}

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BreakGlassReview"

        outcome = serializers.ChoiceField(choices=BreakGlassGrant.Outcome.choices)
        comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer,
        responses={200: BreakGlassGrantSerializer},
        summary="Review a break-glass opening",
        description="`not_justified` also ends the access at once if it is still running. 409 `already_reviewed`.",
    )
    def post(self, request, pk: int):
        grant = get_object_or_404(BreakGlassGrant.objects.all(), pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        grant = services.break_glass_review(grant=grant, reviewer=staff_member_required(request), **data.validated_data)
        return Response(BreakGlassGrantSerializer(grant).data)


class AccessPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessPolicy
        fields = ("break_glass_minutes", "updated")
        read_only_fields = ("updated",)


class AccessPolicyView(MethodPermissions, APIView):
    """GET, PATCH {break_glass_minutes} (5 to 1440): the hospital's access policy (hospital admins)."""

    method_permissions = {"GET": ADMIN, "PATCH": ADMIN}

    @extend_schema(responses={200: AccessPolicySerializer}, summary="The hospital's access policy")
    def get(self, request):
        return Response(AccessPolicySerializer(services.access_policy_get()).data)

    @extend_schema(request=AccessPolicySerializer, responses={200: AccessPolicySerializer})
    def patch(self, request):
        data = AccessPolicySerializer(services.access_policy_get(), data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        minutes = data.validated_data.get("break_glass_minutes")
        policy = (
            services.access_policy_update(break_glass_minutes=minutes, actor=request.user)
            if minutes is not None
            else services.access_policy_get()
        )
        return Response(AccessPolicySerializer(policy).data)


# A patient's access log -------------------------------------------------------------------------------------


class AccessLogFilterSerializer(serializers.Serializer):
    actor = serializers.CharField(max_length=254, required=False, help_text="An account id or an email.")
    action = serializers.ChoiceField(choices=AuditEvent.Action.choices, required=False)
    via = serializers.ChoiceField(choices=[(v, v) for v in Via.ALL], required=False, help_text="The grant used.")
    since = serializers.DateTimeField(required=False, error_messages={"invalid": _WHEN})
    until = serializers.DateTimeField(required=False, error_messages={"invalid": _WHEN})


class AccessLogEntrySerializer(serializers.ModelSerializer):
    via = serializers.SerializerMethodField(help_text=f"The grants the access was made under: {', '.join(Via.ALL)}.")
    break_glass = serializers.SerializerMethodField(help_text="The break-glass grant `{id, reason}`, if one was used.")

    class Meta:
        model = AuditEvent
        fields = ("id", "created", "action", "actor_id", "actor_email", "ip", "user_agent", "via", "break_glass")

    def get_via(self, event: AuditEvent) -> list[str]:
        return list(event.detail.get("via", []))

    def get_break_glass(self, event: AuditEvent) -> dict | None:
        return event.detail.get("break_glass")


def access_log_events(request, pk: int) -> tuple[Patient, dict, QuerySet[AuditEvent]]:
    """The patient (any of this hospital's: 404 otherwise), the filters of the query parameters, and its events."""
    patient = get_object_or_404(Patient.objects.all(), pk=pk)
    filters = _filters(AccessLogFilterSerializer, request.query_params)
    events = audit_target_history(target_type=Patient._meta.label_lower, target_id=str(patient.pk), **filters)
    return patient, filters, events


class PatientAccessLogView(MethodPermissions, ListAPIView):
    """Every view and change of a patient's record, notes and care team: who, when, from where, under which grant."""

    method_permissions = {"GET": OVERSIGHT}
    serializer_class = AccessLogEntrySerializer
    pagination_class = Pagination

    @extend_schema(parameters=[AccessLogFilterSerializer], summary="A patient's access log")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return access_log_events(self.request, self.kwargs["pk"])[2]


CSV_COLUMNS = ("created", "action", "actor_id", "actor_email", "ip", "user_agent", "via", "break_glass", "reason")
CSV_CHUNK = 2000


class _Echo:
    """csv.writer's file: hands each written line back instead of keeping it."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell that starts like a formula: keep it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def access_log_csv(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """The events as CSV lines, read CSV_CHUNK at a time by keyset (created, id): constant memory, no cursor
    held open between chunks (so it works through PgBouncer's transaction pooling too)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    events = events.order_by("-created", "-id")
    after = None
    while True:
        chunk = events
        if after is not None:
            chunk = chunk.filter(Q(created__lt=after[0]) | Q(created=after[0], id__lt=after[1]))
        rows = list(chunk[:CSV_CHUNK])
        for event in rows:
            grant = event.detail.get("break_glass") or {}
            yield writer.writerow(
                [
                    _cell(v)
                    for v in (
                        event.created.isoformat(),
                        event.action,
                        event.actor_id,
                        event.actor_email,
                        event.ip,
                        event.user_agent,
                        " ".join(event.detail.get("via", [])),
                        grant.get("id"),
                        grant.get("reason"),
                    )
                ]
            )
        if len(rows) < CSV_CHUNK:
            return
        after = (rows[-1].created, rows[-1].pk)


class PatientAccessLogExportView(MethodPermissions, APIView):
    """The same log as CSV, streamed (the export itself is audited)."""

    method_permissions = {"GET": OVERSIGHT}

    @extend_schema(
        parameters=[AccessLogFilterSerializer],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The log, newest first.")},
        summary="A patient's access log as CSV",
    )
    def get(self, request, pk: int):
        patient, filters, events = access_log_events(request, pk)
        audit_record(
            action=AuditEvent.Action.ACCESS_LOG_VIEWED,
            target=patient,
            detail={"export": "csv", "filters": {name: str(value) for name, value in filters.items()}},
        )
        response = StreamingHttpResponse(access_log_csv(events), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="patient-{patient.pk}-access-log.csv"'
        return response
