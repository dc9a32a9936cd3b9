"""OpenAPI shapes of the patient API views that spectacular cannot infer (plain APIViews, split bodies)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from core.api import Pagination
from core.openapi import with_schema
from hospitals import permissions as perms
from hospitals import views
from staff.models import StaffMember

PERMISSION_CHOICES = sorted(perms.ALL_PATIENT_PERMS)


class PatientDetailSerializer(views.PatientSerializer):
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=PERMISSION_CHOICES),
        read_only=True,
        help_text="What the caller may do with this patient.",
    )

    class Meta(views.PatientSerializer.Meta):
        fields = (*views.PatientSerializer.Meta.fields, "permissions")  # type: ignore[assignment]  # one more
        ref_name = "PatientDetail"


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


class PatientListCreateExtension(OpenApiViewExtension):
    target_class = "hospitals.views.PatientListCreateView"

    def view_replacement(self):
        class Fixed(self.target_class):
            @extend_schema(
                parameters=[
                    OpenApiParameter("search", str, description="Part of a name, or an MRN."),
                    OpenApiParameter("department", int, description="Only this department's patients."),
                ]
            )
            def get(self, request, *args, **kwargs):
                pass  # pragma: no cover

        return Fixed


class PatientDetailExtension(OpenApiViewExtension):
    target_class = "hospitals.views.PatientDetailView"

    def view_replacement(self):
        write = {"request": views.PatientSerializer, "responses": PatientDetailSerializer}
        return with_schema(self.target_class, get={"responses": PatientDetailSerializer}, put=write, patch=write)


class CareTeamExtension(OpenApiViewExtension):
    target_class = "hospitals.views.CareTeamView"

    def view_replacement(self):
        return with_schema(
            self.target_class,
            get={"responses": views.CareTeamSerializer(many=True)},
            post={"request": views.CareTeamSerializer, "responses": {201: views.CareTeamSerializer}},
        )


class CareTeamMemberExtension(OpenApiViewExtension):
    target_class = "hospitals.views.CareTeamMemberView"

    def view_replacement(self):
        return with_schema(self.target_class, delete={"responses": {204: None}})


class NoteListCreateExtension(OpenApiViewExtension):
    target_class = "hospitals.views.NoteListCreateView"

    def view_replacement(self):
        # A list of notes with the view's paginator: spectacular then names it a list operation
        # (`..._notes_list`), wraps it in `PaginatedNoteList` and adds `page`/`page_size`.
        view = with_schema(
            self.target_class,
            get={"responses": views.NoteSerializer(many=True)},
            post={"request": views.NoteSerializer, "responses": {201: views.NoteSerializer}},
        )
        view.pagination_class = Pagination
        return view


class MyPermissionsExtension(OpenApiViewExtension):
    target_class = "hospitals.views.MyPermissionsView"

    def view_replacement(self):
        return with_schema(self.target_class, get={"responses": MyPermissionsSerializer})
