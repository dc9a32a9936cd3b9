"""/api/ on a hospital subdomain: patients, their care teams and notes, the caller's permissions, the trail."""

from django.urls import path

from hospitals import access_views, views

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
    path("patients/<int:pk>/break-glass/", access_views.BreakGlassOpenView.as_view(), name="patient-break-glass"),
    path("patients/<int:pk>/access-log/", access_views.PatientAccessLogView.as_view(), name="patient-access-log"),
    path(
        "patients/<int:pk>/access-log/export/",
        access_views.PatientAccessLogExportView.as_view(),
        name="patient-access-log-export",
    ),
    path("break-glass/", access_views.BreakGlassListView.as_view(), name="break-glass-list"),
    path("break-glass/<int:pk>/review/", access_views.BreakGlassReviewView.as_view(), name="break-glass-review"),
    path("access-policy/", access_views.AccessPolicyView.as_view(), name="access-policy"),
    path("me/permissions/", views.MyPermissionsView.as_view(), name="me-permissions"),
    path("audit/", views.AuditView.as_view(), name="audit"),
]
