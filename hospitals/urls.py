"""/api/ on a hospital subdomain."""
from django.urls import path

from hospitals import views

urlpatterns = [
    path("invitations/", views.InvitationListCreateView.as_view(), name="invitation-list"),
    path("invitations/<int:pk>/", views.InvitationRevokeView.as_view(), name="invitation-detail"),
]
