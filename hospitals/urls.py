"""/api/ on a hospital subdomain."""

from django.urls import path

from accounts.permissions import IsTenantMember
from audit.views import AuditEventListView
from hospitals import views
from hospitals.permissions import IsHospitalAdmin

urlpatterns = [
    path("invitations/", views.InvitationListCreateView.as_view(), name="invitation-list"),
    path("invitations/<int:pk>/", views.InvitationRevokeView.as_view(), name="invitation-detail"),
    path("departments/", views.DepartmentListCreateView.as_view(), name="department-list"),
    path("departments/<int:pk>/", views.DepartmentDetailView.as_view(), name="department-detail"),
    path("staff/", views.StaffListCreateView.as_view(), name="staff-list"),
    path("staff/<int:pk>/", views.StaffDetailView.as_view(), name="staff-detail"),
    path("patients/", views.PatientListCreateView.as_view(), name="patient-list"),
    path("patients/<int:pk>/", views.PatientDetailView.as_view(), name="patient-detail"),
    path("patients/<int:pk>/care-team/", views.CareTeamView.as_view(), name="patient-care-team"),
    path(
        "patients/<int:pk>/care-team/<int:member_pk>/",
        views.CareTeamMemberView.as_view(),
        name="patient-care-team-member",
    ),
    path("patients/<int:pk>/notes/", views.NoteListCreateView.as_view(), name="patient-notes"),
    path("me/permissions/", views.MyPermissionsView.as_view(), name="me-permissions"),
    path("audit/", AuditEventListView.as_view(permission_classes=[IsTenantMember & IsHospitalAdmin]), name="audit"),
]
