"""/api/platform/ on the platform domain."""

from django.urls import path

from tenants import views

urlpatterns = [
    path("audit/", views.PlatformAuditView.as_view(), name="platform-audit"),
    path("hospitals/", views.HospitalListCreateView.as_view(), name="platform-hospital-list"),
    path("hospitals/<slug:slug>/", views.HospitalDetailView.as_view(), name="platform-hospital-detail"),
    path("hospitals/<slug:slug>/suspend/", views.HospitalSuspendView.as_view(), name="platform-hospital-suspend"),
    path(
        "hospitals/<slug:slug>/reactivate/", views.HospitalReactivateView.as_view(), name="platform-hospital-reactivate"
    ),
]
