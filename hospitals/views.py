"""The hospital's own API, on its subdomain: thin views over hospitals.services and hospitals.selectors."""

import re

from dj_rest_auth.utils import jwt_encode
from django.contrib.auth.signals import user_logged_in
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListCreateAPIView, RetrieveUpdateAPIView
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsTenantMember
from accounts.serializers import CanonicalEmailField, ClientField
from accounts.views import LoginView
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import Pagination
from hospitals import permissions as perms
from hospitals import selectors, services
from hospitals.models import CareTeamMembership, ClinicalNote, Department, Invitation, Patient, StaffMember
from hospitals.permissions import (
    HasRole,
    IsHospitalAdmin,
    IsStaff,
    patient_perms,
    staff_member_of,
    staff_member_required,
)


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ("id", "email", "role", "status", "invited_by", "created", "expires_at", "accepted_at", "revoked_at")


class InvitationCreateSerializer(serializers.Serializer):
    email = CanonicalEmailField()
    role = serializers.ChoiceField(choices=StaffMember.Role.choices)


class InvitationListCreateView(ListCreateAPIView):
    """GET: the hospital's invitations (newest first). POST {email, role}: invite by email."""

    permission_classes = [IsTenantMember & IsHospitalAdmin]
    serializer_class = InvitationSerializer

    def get_queryset(self):
        return Invitation.objects.select_related("invited_by")

    def create(self, request, *args, **kwargs):
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(hospital=request.tenant, invited_by=request.user, **data.validated_data)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationRevokeView(APIView):
    """DELETE: revoke a pending invitation."""

    permission_classes = [IsTenantMember & IsHospitalAdmin]

    def delete(self, request, pk: int):
        services.invitation_revoke(invitation=get_object_or_404(Invitation, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# The hospital workspace: departments, staff, patients, care teams, notes.


class DepartmentSerializer(serializers.ModelSerializer):
    head = serializers.PrimaryKeyRelatedField(
        queryset=StaffMember.objects.filter(is_active=True), allow_null=True, required=False
    )

    class Meta:
        model = Department
        fields = ("id", "name", "code", "head")


class StaffSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    department = serializers.PrimaryKeyRelatedField(queryset=Department.objects.all(), allow_null=True, required=False)

    class Meta:
        model = StaffMember
        fields = ("id", "email", "name", "role", "department", "is_active")


class StaffCreateSerializer(serializers.Serializer):
    email = CanonicalEmailField()
    role = serializers.ChoiceField(choices=StaffMember.Role.choices)
    department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(), allow_null=True, required=False, default=None
    )


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


WORKSPACE = IsTenantMember & IsStaff
ADMIN = IsTenantMember & IsHospitalAdmin


class DepartmentListCreateView(ListCreateAPIView):
    serializer_class = DepartmentSerializer
    queryset = Department.objects.all()

    def get_permissions(self):
        return [(ADMIN if self.request.method == "POST" else WORKSPACE)()]

    def perform_create(self, serializer):
        serializer.instance = services.department_create(**serializer.validated_data)


class DepartmentDetailView(RetrieveUpdateAPIView):
    serializer_class = DepartmentSerializer
    queryset = Department.objects.all()

    def get_permissions(self):
        return [(WORKSPACE if self.request.method in SAFE_METHODS else ADMIN)()]

    def perform_update(self, serializer):
        services.department_update(department=serializer.instance, **serializer.validated_data)


class StaffListCreateView(ListCreateAPIView):
    serializer_class = StaffSerializer

    def get_queryset(self):
        return selectors.staff_list()

    def get_permissions(self):
        return [(ADMIN if self.request.method == "POST" else WORKSPACE)()]

    def create(self, request, *args, **kwargs):
        data = StaffCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff = services.staff_member_add(hospital=request.tenant, **data.validated_data)
        return Response(StaffSerializer(staff).data, status=status.HTTP_201_CREATED)


class StaffDetailView(RetrieveUpdateAPIView):
    serializer_class = StaffSerializer

    def get_queryset(self):
        return selectors.staff_list()

    def get_permissions(self):
        return [(WORKSPACE if self.request.method in SAFE_METHODS else ADMIN)()]

    def perform_update(self, serializer):
        services.staff_member_update(staff=serializer.instance, **serializer.validated_data)


def patient_or_404(request, pk: int, *, need: str) -> tuple[Patient, frozenset[str]]:
    """The patient if the caller may view it (else 404, so records can't be probed), and `need` on it (else 403)."""
    staff = staff_member_required(request)
    patient = get_object_or_404(selectors.patient_list(staff=staff), pk=pk)
    held = patient_perms(staff, patient)
    if need not in held:
        raise PermissionDenied("You may view this patient, but not do this.")
    return patient, held


class PatientListCreateView(ListCreateAPIView):
    """GET: the patients you may view (?search= name or MRN, ?department=id). POST: register one."""

    serializer_class = PatientSerializer

    def get_permissions(self):
        if self.request.method == "POST":
            return [(IsTenantMember & HasRole.of(StaffMember.Role.HOSPITAL_ADMIN, StaffMember.Role.RECEPTIONIST))()]
        return [WORKSPACE()]

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


class PatientDetailView(APIView):
    """GET (needs view), PUT/PATCH (needs change): one patient, with what you may do with it."""

    permission_classes = [WORKSPACE]

    def get(self, request, pk: int):
        patient, held = patient_or_404(request, pk, need=perms.VIEW)
        audit_record(action=AuditEvent.Action.PATIENT_VIEWED, target=patient)
        return Response({**PatientSerializer(patient).data, "permissions": sorted(held)})

    def patch(self, request, pk: int, partial: bool = True):
        patient, held = patient_or_404(request, pk, need=perms.CHANGE)
        data = PatientSerializer(patient, data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        patient = services.patient_update(patient=patient, **data.validated_data)
        return Response({**PatientSerializer(patient).data, "permissions": sorted(held)})

    def put(self, request, pk: int):
        return self.patch(request, pk, partial=False)


class CareTeamView(APIView):
    """GET (needs the clinical record): the care team. POST {staff, role} (hospital admins): add, with grants."""

    permission_classes = [WORKSPACE]

    def get(self, request, pk: int):
        patient, _ = patient_or_404(request, pk, need=perms.CLINICAL)
        members = patient.care_team.select_related("staff__user")
        return Response(CareTeamSerializer(members, many=True).data)

    def post(self, request, pk: int):
        patient, _ = patient_or_404(request, pk, need=perms.VIEW)
        if not staff_member_required(request).is_admin:
            raise PermissionDenied("Only the hospital's administrators grant access.")
        data = CareTeamSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.care_team_add(
            patient=patient,
            staff=data.validated_data["staff"],
            role=data.validated_data.get("role", CareTeamMembership.Role.OTHER),
        )
        return Response(CareTeamSerializer(membership).data, status=status.HTTP_201_CREATED)


class CareTeamMemberView(APIView):
    """DELETE (hospital admins): take a member off the care team, and its grants with it."""

    permission_classes = [WORKSPACE]

    def delete(self, request, pk: int, member_pk: int):
        patient, _ = patient_or_404(request, pk, need=perms.VIEW)
        if not staff_member_required(request).is_admin:
            raise PermissionDenied("Only the hospital's administrators revoke access.")
        membership = get_object_or_404(patient.care_team.select_related("staff__user", "patient"), pk=member_pk)
        services.care_team_remove(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NoteListCreateView(APIView):
    """GET (needs the clinical record): the notes, oldest first. POST {body, corrects?} (needs add_note)."""

    permission_classes = [WORKSPACE]

    def get(self, request, pk: int):
        patient, _ = patient_or_404(request, pk, need=perms.CLINICAL)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.patient_notes(patient=patient), request, view=self)
        return paginator.get_paginated_response(NoteSerializer(page, many=True).data)

    def post(self, request, pk: int):
        patient, _ = patient_or_404(request, pk, need=perms.ADD_NOTE)
        data = NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.note_add(
            patient=patient,
            author=staff_member_required(request),
            body=data.validated_data["body"],
            corrects=data.validated_data.get("corrects_id"),
        )
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class MyPermissionsView(APIView):
    """What the caller may do in this hospital, for frontends to show or hide actions."""

    permission_classes = [IsTenantMember]

    def get(self, request):
        staff = staff_member_of(request)
        role = staff.role if staff else None
        admin = bool(staff and staff.is_admin)
        return Response(
            {
                "role": role,
                "department": staff.department_id if staff else None,
                "is_hospital_admin": admin,
                "can": {
                    "list_patients": staff is not None,
                    "create_patients": role in (StaffMember.Role.HOSPITAL_ADMIN, StaffMember.Role.RECEPTIONIST),
                    "manage_care_teams": admin,
                    "manage_departments": admin,
                    "manage_staff": admin,
                    "invite_staff": admin,
                },
                "patient_permissions": "GET /api/patients/{id}/ answers with the caller's permissions on it",
            }
        )


# Accepting an invitation is a login of the invited account (/accounts/invitations/accept/, config/urls_tenants.py).


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    client = ClientField()  # as at login: `app` gets the refresh token in the body


class InvitationAcceptView(LoginView):
    """Accepting an invitation activates the account and answers exactly like a login."""

    serializer_class = InvitationAcceptSerializer

    def post(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        self.client = data.validated_data.pop("client")
        self.user = services.invitation_accept(hospital=request.tenant, **data.validated_data)
        self.access_token, self.refresh_token = jwt_encode(self.user)
        user_logged_in.send(sender=type(self.user), request=request._request, user=self.user)
        return self.get_response()
