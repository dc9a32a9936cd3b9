"""OpenAPI shapes of the staff views that spectacular cannot infer (split bodies, the login-like acceptance)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import extend_schema

from accounts.serializers import LoginResponseSerializer
from core.openapi import with_schema
from staff import views


class InvitationListCreateExtension(OpenApiViewExtension):
    target_class = "staff.views.InvitationListCreateView"

    def view_replacement(self):
        # GET stays as inferred; POST takes the create body.
        class Fixed(self.target_class):
            @extend_schema(request=views.InvitationCreateSerializer, responses={201: views.InvitationSerializer})
            def post(self, request, *args, **kwargs):
                pass  # pragma: no cover

        return Fixed


class InvitationRevokeExtension(OpenApiViewExtension):
    target_class = "staff.views.InvitationRevokeView"

    def view_replacement(self):
        return with_schema(self.target_class, delete={"responses": {204: None}, "summary": "Revoke an invitation"})


class StaffListCreateExtension(OpenApiViewExtension):
    target_class = "staff.views.StaffListCreateView"

    def view_replacement(self):
        class Fixed(self.target_class):
            @extend_schema(request=views.StaffCreateSerializer, responses={201: views.StaffSerializer})
            def post(self, request, *args, **kwargs):
                pass  # pragma: no cover

        return Fixed


class InvitationAcceptViewExtension(OpenApiViewExtension):
    target_class = "staff.views.InvitationAcceptView"

    def view_replacement(self):
        return with_schema(
            self.target_class,
            post={
                "responses": LoginResponseSerializer,
                "summary": "Accept an invitation: answers like a login",
                "description": "Sets the password and answers exactly like a login, `client` included.",
            },
        )
