"""OpenAPI shapes of the platform API views that spectacular cannot infer."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import extend_schema

from tenants import views


class HospitalListCreateExtension(OpenApiViewExtension):
    target_class = "tenants.views.HospitalListCreateView"

    def view_replacement(self):
        class Fixed(self.target_class):
            @extend_schema(
                request=views.HospitalOnboardSerializer,
                responses={201: views.HospitalSerializer},
                summary="Onboard a hospital (its admin is emailed an invitation)",
            )
            def post(self, request, *args, **kwargs):
                pass  # pragma: no cover

        return Fixed


def _action_extension(view_path: str, summary: str):
    class Extension(OpenApiViewExtension):
        target_class = view_path

        def view_replacement(self):
            class Fixed(self.target_class):
                @extend_schema(request=None, responses=views.HospitalSerializer, summary=summary)
                def post(self, request, *args, **kwargs):
                    pass  # pragma: no cover

            return Fixed

    return Extension


HospitalSuspendExtension = _action_extension(
    "tenants.views.HospitalSuspendView", "Suspend: the hospital's subdomain answers 403 until reactivated"
)
HospitalReactivateExtension = _action_extension("tenants.views.HospitalReactivateView", "Reactivate")
