"""The hospital's patient API, on its subdomain: thin views over hospitals.services and hospitals.selectors."""

import re

from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListCreateAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsTenantMember
from audit.models import AuditEvent
from core.api import MethodPermissions, Pagination
from hospitals import permissions as perms
from hospitals import selectors, services
from hospitals.models import CareTeamMembership, ClinicalNote, Patient
from hospitals.permissions import PatientAccess, patient_access
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


def patient_or_404(request, pk: int, *, need: str) -> tuple[Patient, PatientAccess]:
    """The patient if the caller may view it (else 404, so records can't be probed), `need` on it (else 403),
    and the grants the caller holds it by (for the audit trail)."""
    staff = staff_member_required(request)
    patient = selectors.patient_get(staff=staff, pk=pk)
    if patient is None:
        raise Http404
    access = patient_access(staff, patient)
    if need not in access.perms:
        raise PermissionDenied("You may view this patient, but not do this.")
    return patient, access


class PatientListCreateView(MethodPermissions, ListCreateAPIView):
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

    def perform_create(self, serializer):
        serializer.instance = services.patient_create(
            created_by=staff_member_of(self.request), **serializer.validated_data
        )


class PatientDetailView(MethodPermissions, APIView):
    """GET (needs view), PUT/PATCH (needs change): one patient, with what you may do with it."""

    method_permissions = {"GET": WORKSPACE, "PUT": WORKSPACE, "PATCH": WORKSPACE}

    def get(self, request, pk: int):
        patient, access = patient_or_404(request, pk, need=perms.VIEW)
        services.patient_access_record(action=AuditEvent.Action.PATIENT_VIEWED, patient=patient, access=access)
        return Response({**PatientSerializer(patient).data, "permissions": sorted(access.perms)})

    def patch(self, request, pk: int, partial: bool = True):
        patient, access = patient_or_404(request, pk, need=perms.CHANGE)
        data = PatientSerializer(patient, data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        patient = services.patient_update(patient=patient, access=access, **data.validated_data)
        return Response({**PatientSerializer(patient).data, "permissions": sorted(access.perms)})

    def put(self, request, pk: int):
        return self.patch(request, pk, partial=False)


class CareTeamView(MethodPermissions, APIView):
    """GET (needs the clinical record): the care team. POST {staff, role} (hospital admins): add, with grants."""

    method_permissions = {"GET": WORKSPACE, "POST": WORKSPACE}
    after_lookup_permissions = {"POST": ADMIN}

    def get(self, request, pk: int):
        patient, access = patient_or_404(request, pk, need=perms.CLINICAL)
        services.patient_access_record(action=AuditEvent.Action.CARE_TEAM_VIEWED, patient=patient, access=access)
        members = patient.care_team.select_related("staff__user")
        return Response(CareTeamSerializer(members, many=True).data)

    def post(self, request, pk: int):
        patient, access = patient_or_404(request, pk, need=perms.VIEW)
        self.check_after_lookup()
        data = CareTeamSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.care_team_add(
            patient=patient,
            staff=data.validated_data["staff"],
            role=data.validated_data.get("role", CareTeamMembership.Role.OTHER),
            access=access,
        )
        return Response(CareTeamSerializer(membership).data, status=status.HTTP_201_CREATED)


class CareTeamMemberView(MethodPermissions, APIView):
    """DELETE (hospital admins): take a member off the care team, and its grants with it."""

    method_permissions = {"DELETE": WORKSPACE}
    after_lookup_permissions = {"DELETE": ADMIN}

    def delete(self, request, pk: int, member_pk: int):
        patient, access = patient_or_404(request, pk, need=perms.VIEW)
        self.check_after_lookup()
        membership = get_object_or_404(patient.care_team.select_related("staff__user", "patient"), pk=member_pk)
        services.care_team_remove(membership=membership, access=access)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NoteListCreateView(MethodPermissions, APIView):
    """GET (needs the clinical record): the notes, oldest first. POST {body, corrects?} (needs add_note)."""

    method_permissions = {"GET": WORKSPACE, "POST": WORKSPACE}

    def get(self, request, pk: int):
        patient, access = patient_or_404(request, pk, need=perms.CLINICAL)
        services.patient_access_record(action=AuditEvent.Action.NOTES_VIEWED, patient=patient, access=access)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.patient_notes(patient=patient), request, view=self)
        return paginator.get_paginated_response(NoteSerializer(page, many=True).data)

    def post(self, request, pk: int):
        patient, access = patient_or_404(request, pk, need=perms.ADD_NOTE)
        data = NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.note_add(
            patient=patient,
            author=staff_member_required(request),
            body=data.validated_data["body"],
            corrects=data.validated_data.get("corrects_id"),
            access=access,
        )
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


# What /api/me/permissions/ reports: each action, and the view and method whose permission classes decide it.
ACTIONS: dict[str, tuple[type[MethodPermissions], str]] = {
    "list_patients": (PatientListCreateView, "GET"),
    "create_patients": (PatientListCreateView, "POST"),
    "manage_care_teams": (CareTeamView, "POST"),
    "manage_departments": (DepartmentListCreateView, "POST"),
    "manage_staff": (StaffListCreateView, "POST"),
    "invite_staff": (InvitationListCreateView, "POST"),
}


class MyPermissionsView(APIView):
    """What the caller may do in this hospital, for frontends to show or hide actions: asked of the same
    permission classes the endpoints enforce."""

    permission_classes = [IsTenantMember]

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
