"""The hospital's patient API, on its subdomain: thin views over hospitals.services and hospitals.selectors.

The project's one API style (ARCHITECTURE.md "API style"); every endpoint on one patient is a
`PatientRecordView`, whose `patient()` is the one way to reach the record (404 / `PatientAccess`).
"""

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsTenantMember
from audit.models import AuditEvent
from audit.services import audit_record
from audit.views import AuditEventListView
from core.api import MethodPermissions, Pagination
from hospitals import permissions as perms
from hospitals import selectors, services
from hospitals.models import CareTeamMembership, ClinicalNote, Patient
from hospitals.permissions import PatientAccess, patient_perms_of
from staff.models import Department, StaffMember
from staff.permissions import ADMIN, WORKSPACE, HasRole, staff_member_of, staff_member_required
from staff.views import DepartmentListCreateView, InvitationListCreateView, StaffListCreateView


class PatientSerializer(serializers.ModelSerializer):
    department = serializers.PrimaryKeyRelatedField(queryset=Department.objects.all(), allow_null=True, required=False)

    class Meta:
        model = Patient
        fields = (
            "id",
            "mrn",
            "first_name",
            "last_name",
            "date_of_birth",
            "sex",
            "phone",
            "email",
            "address",
            "department",
            "created",
            "updated",
        )
        read_only_fields = ("created", "updated")


class PatientDetailSerializer(PatientSerializer):
    # A patient, with what the caller may do with it (a comment: a docstring would enter the schema).
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(perms.ALL_PATIENT_PERMS)),
        read_only=True,
        help_text="What the caller may do with this patient.",
    )

    class Meta(PatientSerializer.Meta):
        fields = (*PatientSerializer.Meta.fields, "permissions")  # type: ignore[assignment]  # one more
        ref_name = "PatientDetail"


class CareTeamSerializer(serializers.ModelSerializer):
    staff = serializers.PrimaryKeyRelatedField(queryset=StaffMember.objects.all())
    staff_name = serializers.CharField(source="staff.user.name", read_only=True)
    staff_role = serializers.CharField(source="staff.role", read_only=True)

    class Meta:
        model = CareTeamMembership
        fields = ("id", "staff", "staff_name", "staff_role", "role", "created")


class NoteSerializer(serializers.ModelSerializer):
    author_name = serializers.CharField(source="author.user.name", read_only=True)
    corrects = serializers.IntegerField(source="corrects_id", allow_null=True, required=False, default=None)

    class Meta:
        model = ClinicalNote
        fields = ("id", "author", "author_name", "body", "corrects", "created")
        read_only_fields = ("author",)


class PatientRecordView(MethodPermissions, APIView):
    """An endpoint on one patient (`/api/patients/<pk>/...`). `patient_needs` names the grant each method needs
    on it (hospitals.permissions), checked by `PatientAccess` as DRF checks object permissions."""

    patient_needs: dict[str, str] = {}

    def get_permissions(self):
        return [*super().get_permissions(), PatientAccess()]

    def patient(self) -> Patient:
        """The patient of the URL, looked up among those the caller may view: any other is a 404, so records
        cannot be probed; then `patient_needs` for this method (403 on a patient the caller may view)."""
        staff = staff_member_required(self.request)
        patient = get_object_or_404(selectors.patient_list(staff=staff), pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, patient)
        return patient


@extend_schema_view(
    get=extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="Part of a name, or an MRN."),
            OpenApiParameter("department", int, description="Only this department's patients."),
        ]
    )
)
class PatientListCreateView(MethodPermissions, ListAPIView):
    """GET: the patients you may view (?search= name or MRN, ?department=id). POST: register one."""

    serializer_class = PatientSerializer
    method_permissions = {
        "GET": WORKSPACE,
        "POST": IsTenantMember & HasRole.of(StaffMember.Role.HOSPITAL_ADMIN, StaffMember.Role.RECEPTIONIST),
    }

    def get_queryset(self):
        department = self.request.query_params.get("department")
        if department is not None and not re.fullmatch(r"[0-9]{1,18}", department):
            raise ValidationError({"department": ["Must be a department id."]})
        search = self.request.query_params.get("search", "").strip()
        if "\x00" in search:  # PostgreSQL text cannot hold NUL
            raise ValidationError({"search": ["Must not contain NUL characters."]})
        return selectors.patient_list(
            staff=staff_member_of(self.request), search=search, department_id=int(department) if department else None
        )

    @extend_schema(request=PatientSerializer, responses={201: PatientSerializer})
    def post(self, request, *args, **kwargs):
        data = PatientSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        patient = services.patient_create(created_by=staff_member_of(request), **data.validated_data)
        return Response(PatientSerializer(patient).data, status=status.HTTP_201_CREATED)


def _patient_detail(request, patient: Patient) -> dict:
    return {**PatientSerializer(patient).data, "permissions": sorted(patient_perms_of(request, patient))}


class PatientDetailView(PatientRecordView):
    """GET (needs view), PUT/PATCH (needs change): one patient, with what you may do with it."""

    method_permissions = {"GET": WORKSPACE, "PUT": WORKSPACE, "PATCH": WORKSPACE}
    patient_needs = {"GET": perms.VIEW, "PUT": perms.CHANGE, "PATCH": perms.CHANGE}

    @extend_schema(responses=PatientDetailSerializer)
    def get(self, request, pk: int):
        patient = self.patient()
        audit_record(action=AuditEvent.Action.PATIENT_VIEWED, target=patient)
        return Response(_patient_detail(request, patient))

    @extend_schema(request=PatientSerializer, responses=PatientDetailSerializer)
    def put(self, request, pk: int):
        patient = self.patient()
        data = PatientSerializer(patient, data=request.data, partial=request.method == "PATCH")
        data.is_valid(raise_exception=True)
        patient = services.patient_update(patient=patient, **data.validated_data)
        return Response(_patient_detail(request, patient))

    patch = put


class CareTeamView(PatientRecordView):
    """GET (needs the clinical record): the care team. POST {staff, role} (hospital admins): add, with grants."""

    method_permissions = {"GET": WORKSPACE, "POST": WORKSPACE}
    after_lookup_permissions = {"POST": ADMIN}
    patient_needs = {"GET": perms.CLINICAL, "POST": perms.VIEW}

    @extend_schema(responses=CareTeamSerializer(many=True))
    def get(self, request, pk: int):
        members = self.patient().care_team.select_related("staff__user")
        return Response(CareTeamSerializer(members, many=True).data)

    @extend_schema(request=CareTeamSerializer, responses={201: CareTeamSerializer})
    def post(self, request, pk: int):
        patient = self.patient()
        self.check_after_lookup()
        data = CareTeamSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.care_team_add(
            patient=patient,
            staff=data.validated_data["staff"],
            role=data.validated_data.get("role", CareTeamMembership.Role.OTHER),
        )
        return Response(CareTeamSerializer(membership).data, status=status.HTTP_201_CREATED)


class CareTeamMemberView(PatientRecordView):
    """DELETE (hospital admins): take a member off the care team, and its grants with it."""

    method_permissions = {"DELETE": WORKSPACE}
    after_lookup_permissions = {"DELETE": ADMIN}
    patient_needs = {"DELETE": perms.VIEW}

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int, member_pk: int):
        patient = self.patient()
        self.check_after_lookup()
        membership = get_object_or_404(patient.care_team.select_related("staff__user", "patient"), pk=member_pk)
        services.care_team_remove(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NoteListCreateView(PatientRecordView):
    """GET (needs the clinical record): the notes, oldest first. POST {body, corrects?} (needs add_note)."""

    method_permissions = {"GET": WORKSPACE, "POST": WORKSPACE}
    patient_needs = {"GET": perms.CLINICAL, "POST": perms.ADD_NOTE}
    # Also read by the schema: a list with this paginator is `PaginatedNoteList` with `page`/`page_size`.
    pagination_class = Pagination

    @extend_schema(responses=NoteSerializer(many=True))
    def get(self, request, pk: int):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.patient_notes(patient=self.patient()), request, view=self)
        return paginator.get_paginated_response(NoteSerializer(page, many=True).data)

    @extend_schema(request=NoteSerializer, responses={201: NoteSerializer})
    def post(self, request, pk: int):
        patient = self.patient()
        data = NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.note_add(
            patient=patient,
            author=staff_member_required(request),
            body=data.validated_data["body"],
            corrects=data.validated_data.get("corrects_id"),
        )
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class AuditView(AuditEventListView):
    method_permissions = {"GET": ADMIN, "OPTIONS": ADMIN}  # the hospital's trail: its administrators


# What /api/me/permissions/ reports: each action, and the view and method whose permission classes decide it.
ACTIONS: dict[str, tuple[type[MethodPermissions], str]] = {
    "list_patients": (PatientListCreateView, "GET"),
    "create_patients": (PatientListCreateView, "POST"),
    "manage_care_teams": (CareTeamView, "POST"),
    "manage_departments": (DepartmentListCreateView, "POST"),
    "manage_staff": (StaffListCreateView, "POST"),
    "invite_staff": (InvitationListCreateView, "POST"),
}


class CanSerializer(serializers.Serializer):
    list_patients = serializers.BooleanField()
    create_patients = serializers.BooleanField()
    manage_care_teams = serializers.BooleanField()
    manage_departments = serializers.BooleanField()
    manage_staff = serializers.BooleanField()
    invite_staff = serializers.BooleanField()

    class Meta:
        ref_name = "Can"


class MyPermissionsSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=StaffMember.Role.choices, allow_null=True)
    department = serializers.IntegerField(allow_null=True)
    is_hospital_admin = serializers.BooleanField()
    can = CanSerializer()
    patient_permissions = serializers.CharField()

    class Meta:
        ref_name = "MyPermissions"


class MyPermissionsView(MethodPermissions, APIView):
    """What the caller may do in this hospital, for frontends to show or hide actions: asked of the same
    permission classes the endpoints enforce."""

    method_permissions = {"GET": IsTenantMember}

    @extend_schema(responses=MyPermissionsSerializer)
    def get(self, request):
        staff = staff_member_of(request)
        return Response(
            {
                "role": staff.role if staff else None,
                "department": staff.department_id if staff else None,
                "is_hospital_admin": bool(staff and staff.is_admin),
                "can": {action: view.allows(request, method) for action, (view, method) in ACTIONS.items()},
                "patient_permissions": "GET /api/patients/{id}/ answers with the caller's permissions on it",
            }
        )
