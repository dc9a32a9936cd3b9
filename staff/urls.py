"""/api/ on a hospital subdomain: invitations, departments, staff (the acceptance is in config/urls_tenants.py)."""

from django.urls import path

from staff import views

urlpatterns = [
    path("invitations/", views.InvitationListCreateView.as_view(), name="invitation-list"),
    path("invitations/<int:pk>/", views.InvitationRevokeView.as_view(), name="invitation-detail"),
    path("departments/", views.DepartmentListCreateView.as_view(), name="department-list"),
    path("departments/<int:pk>/", views.DepartmentDetailView.as_view(), name="department-detail"),
    path("staff/", views.StaffListCreateView.as_view(), name="staff-list"),
    path("staff/<int:pk>/", views.StaffDetailView.as_view(), name="staff-detail"),
    path("staff/<int:pk>/mfa-reset/", views.StaffMfaResetView.as_view(), name="staff-mfa-reset"),
    path("mfa-policy/", views.MfaPolicyView.as_view(), name="mfa-policy"),
    path("staff/<int:pk>/sessions/", views.StaffSessionsView.as_view(), name="staff-sessions"),
]
