"""The staff API on a hospital subdomain: invitations, departments, staff; and accepting an invitation.

Thin views over staff.services and staff.selectors, in the project's one API style (ARCHITECTURE.md "API
style"): reads are DRF generics over a selector, each write is a handler that validates its input serializer,
calls one service and answers with the output serializer; `@extend_schema` on the handler says so.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.serializers import CanonicalEmailField, ClientField, LoginResponseSerializer
from accounts.views import LoginView, SessionsEndedSerializer, SessionSerializer, current_session
from core.api import MethodPermissions
from staff import mfa, selectors, services
from staff.models import Department, Invitation, MfaPolicy, StaffMember
from staff.permissions import ADMIN, WORKSPACE


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ("id", "email", "role", "status", "invited_by", "created", "expires_at", "accepted_at", "revoked_at")


class InvitationCreateSerializer(serializers.Serializer):
    email = CanonicalEmailField()
    role = serializers.ChoiceField(choices=StaffMember.Role.choices)


class InvitationListCreateView(MethodPermissions, ListAPIView):
    """GET: the hospital's invitations (newest first). POST {email, role}: invite by email."""

    method_permissions = {"GET": ADMIN, "POST": ADMIN}
    serializer_class = InvitationSerializer

    def get_queryset(self):
        return Invitation.objects.select_related("invited_by")

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def post(self, request, *args, **kwargs):
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(hospital=request.tenant, invited_by=request.user, **data.validated_data)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationRevokeView(MethodPermissions, APIView):
    """DELETE: revoke a pending invitation."""

    method_permissions = {"DELETE": ADMIN}

    @extend_schema(responses={204: None}, summary="Revoke an invitation")
    def delete(self, request, pk: int):
        services.invitation_revoke(invitation=get_object_or_404(Invitation, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


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


class DepartmentListCreateView(MethodPermissions, ListAPIView):
    """GET: the hospital's departments. POST {name, code, head?}: create one."""

    serializer_class = DepartmentSerializer
    queryset = Department.objects.all()
    method_permissions = {"GET": WORKSPACE, "POST": ADMIN}

    @extend_schema(request=DepartmentSerializer, responses={201: DepartmentSerializer})
    def post(self, request, *args, **kwargs):
        data = DepartmentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        department = services.department_create(**data.validated_data)
        return Response(DepartmentSerializer(department).data, status=status.HTTP_201_CREATED)


class DepartmentDetailView(MethodPermissions, RetrieveAPIView):
    """GET a department; PUT/PATCH its name, code or head."""

    serializer_class = DepartmentSerializer
    queryset = Department.objects.all()
    method_permissions = {"GET": WORKSPACE, "PUT": ADMIN, "PATCH": ADMIN}

    def put(self, request, *args, **kwargs):
        department = self.get_object()
        data = DepartmentSerializer(department, data=request.data, partial=request.method == "PATCH")
        data.is_valid(raise_exception=True)
        department = services.department_update(department=department, **data.validated_data)
        return Response(DepartmentSerializer(department).data)

    patch = put


class StaffListCreateView(MethodPermissions, ListAPIView):
    """GET: the hospital's staff. POST {email, role, department?}: give an account of this hospital a role."""

    serializer_class = StaffSerializer
    method_permissions = {"GET": WORKSPACE, "POST": ADMIN}

    def get_queryset(self):
        return selectors.staff_list()

    @extend_schema(request=StaffCreateSerializer, responses={201: StaffSerializer})
    def post(self, request, *args, **kwargs):
        data = StaffCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff = services.staff_member_add(hospital=request.tenant, actor=request.user, **data.validated_data)
        return Response(StaffSerializer(staff).data, status=status.HTTP_201_CREATED)


class StaffDetailView(MethodPermissions, RetrieveAPIView):
    """GET a staff member; PUT/PATCH its role, department or whether it is active (audited)."""

    serializer_class = StaffSerializer
    method_permissions = {"GET": WORKSPACE, "PUT": ADMIN, "PATCH": ADMIN}

    def get_queryset(self):
        return selectors.staff_list()

    def put(self, request, *args, **kwargs):
        staff = self.get_object()
        data = StaffSerializer(staff, data=request.data, partial=request.method == "PATCH")
        data.is_valid(raise_exception=True)
        staff = services.staff_member_update(staff=staff, actor=request.user, **data.validated_data)
        return Response(StaffSerializer(staff).data)

    patch = put


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

    @extend_schema(
        responses=LoginResponseSerializer,
        summary="Accept an invitation: answers like a login",
        description="Sets the password and answers exactly like a login, `client` included.",
    )
    def post(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        self.client = data.validated_data.pop("client")
        self.login_complete(services.invitation_accept(hospital=request.tenant, **data.validated_data))
        return self.get_response()


# Second factors: the hospital's policy, and an admin's reset of a staff member's factors (staff/mfa.py).


class MfaPolicyView(MethodPermissions, APIView):
    method_permissions = {"GET": ADMIN, "PUT": ADMIN}

    class PolicySerializer(serializers.Serializer):
        mode = serializers.ChoiceField(choices=MfaPolicy.Mode.choices)
        roles = serializers.ListField(
            child=serializers.ChoiceField(choices=StaffMember.Role.choices),
            required=False,
            default=list,
            max_length=len(StaffMember.Role.choices),
            help_text="With `required_for_roles`: the roles that must log in with a second factor.",
        )

        class Meta:
            ref_name = "MfaPolicy"

    @extend_schema(summary="This hospital's MFA policy", responses=PolicySerializer)
    def get(self, request):
        return Response(self.PolicySerializer(mfa.mfa_policy_get()).data)

    @extend_schema(
        summary="Set this hospital's MFA policy",
        description="`optional`, `required_for_roles` (with `roles`) or `required_for_all`. An account that must "
        "have a second factor and has none logs in to an enrolment-only session: every other endpoint answers "
        "403 `mfa_enrollment_required` until it enrols and logs in again. Audited (`mfa_policy_changed`).",
        request=PolicySerializer,
        responses=PolicySerializer,
    )
    def put(self, request):
        data = self.PolicySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy = mfa.mfa_policy_set(actor=request.user, **data.validated_data)
        return Response(self.PolicySerializer(policy).data)


class StaffMfaResetView(MethodPermissions, APIView):
    method_permissions = {"POST": ADMIN}

    @extend_schema(
        summary="Reset a staff member's second factors",
        description="Removes every second factor of the staff member's account (a lost phone): audited "
        "(`mfa_reset`) and the staff member is emailed at once. They log in with their password alone "
        "(or, where the policy requires one, to an enrolment-only session) and enrol again.",
        request=None,
        responses={204: None},
    )
    def post(self, request, pk: int):
        staff = get_object_or_404(selectors.staff_list(), pk=pk)
        mfa.staff_mfa_reset(staff=staff, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StaffSessionsView(MethodPermissions, APIView):
    """A staff member's sessions, for the hospital's admins (a shared workstation left logged in, a lost phone)."""

    method_permissions = {"GET": ADMIN, "DELETE": ADMIN}

    def staff(self, pk: int) -> StaffMember:
        return get_object_or_404(selectors.staff_list(), pk=pk)

    @extend_schema(summary="A staff member's active sessions", responses=SessionSerializer(many=True))
    def get(self, request, pk: int):
        sessions = account_selectors.sessions_live(user_id=self.staff(pk).user_id)
        return Response(SessionSerializer(sessions, many=True, context={"current": current_session(request)}).data)

    @extend_schema(
        summary="End all of a staff member's sessions",
        description="Their tokens stop working at once; audited (`sessions_ended`), and the staff member is "
        "told by email.",
        request=None,
        responses={200: SessionsEndedSerializer},
    )
    def delete(self, request, pk: int):
        staff = self.staff(pk)
        ended = account_services.sessions_end_by_admin(user=staff.user, actor=request.user)
        return Response(SessionsEndedSerializer({"ended": ended}).data)
