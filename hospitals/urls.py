"""/api/ on a hospital subdomain: patients, their care teams and notes, the caller's permissions, the trail."""

from django.urls import path

from hospitals import views

urlpatterns = [
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
    path("audit/", views.AuditView.as_view(), name="audit"),
]
