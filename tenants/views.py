"""The platform API, on BASE_DOMAIN, for platform staff: onboarding and running hospitals.

The project's one API style (ARCHITECTURE.md "API style"): reads are DRF generics over a selector, each write
a handler that validates its input serializer, calls one service and answers with the output serializer.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import filters, serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsPlatformStaff
from accounts.serializers import CanonicalEmailField
from audit.views import AuditEventListView
from core.api import MethodPermissions
from tenants import selectors, services
from tenants.models import SLUG_MAX_LENGTH, Hospital


class HospitalSerializer(serializers.ModelSerializer):
    domain = serializers.SerializerMethodField()

    class Meta:
        model = Hospital
        fields = ("slug", "name", "domain", "is_active", "created", "session_idle_minutes", "session_max_minutes")
        read_only_fields = ("slug", "domain", "is_active", "created")

    def get_domain(self, hospital) -> str:
        return services.hospital_host(hospital.slug)


class HospitalOnboardSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=SLUG_MAX_LENGTH)
    admin_email = CanonicalEmailField()
    admin_first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    admin_last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


# Platform staff only: each view's map names `IsPlatformStaff` for its methods, and it is also the fallback for
# a method no map lists (OPTIONS), so nothing on the platform API answers anyone else. (A comment, not a
# docstring: a view without its own would show this one in the schema.)
class PlatformView(MethodPermissions, APIView):
    permission_classes = [IsPlatformStaff]


class HospitalListCreateView(PlatformView, ListAPIView):
    """GET: hospitals, paginated, ?search= on name and slug. POST: onboard one (its admin is invited)."""

    method_permissions = {"GET": IsPlatformStaff, "POST": IsPlatformStaff}
    serializer_class = HospitalSerializer
    filter_backends = [filters.SearchFilter]
    search_fields = ["name", "slug"]

    def get_queryset(self):
        return selectors.hospital_list()

    @extend_schema(
        request=HospitalOnboardSerializer,
        responses={201: HospitalSerializer},
        summary="Onboard a hospital (its admin is emailed an invitation)",
    )
    def post(self, request, *args, **kwargs):
        data = HospitalOnboardSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hospital = services.hospital_create(**data.validated_data)
        return Response(HospitalSerializer(hospital).data, status=status.HTTP_201_CREATED)


class HospitalDetailView(PlatformView, RetrieveAPIView):
    """GET a hospital; PATCH/PUT its name and its session limits (idle and absolute, in minutes)."""

    method_permissions = {"GET": IsPlatformStaff, "PUT": IsPlatformStaff, "PATCH": IsPlatformStaff}
    serializer_class = HospitalSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return selectors.hospital_list()

    def put(self, request, *args, **kwargs):
        hospital = self.get_object()
        data = HospitalSerializer(hospital, data=request.data, partial=request.method == "PATCH")
        data.is_valid(raise_exception=True)
        hospital = services.hospital_update(hospital=hospital, **data.validated_data)
        return Response(HospitalSerializer(hospital).data)

    patch = put


def _hospital(slug: str) -> Hospital:
    return get_object_or_404(selectors.hospital_list(), slug=slug)


class HospitalSuspendView(PlatformView):
    """POST: the hospital's subdomain stops answering (403) until reactivated; nothing is deleted."""

    method_permissions = {"POST": IsPlatformStaff}

    @extend_schema(
        request=None,
        responses=HospitalSerializer,
        summary="Suspend: the hospital's subdomain answers 403 until reactivated",
    )
    def post(self, request, slug: str):
        return Response(HospitalSerializer(services.hospital_suspend(hospital=_hospital(slug))).data)


class HospitalReactivateView(PlatformView):
    """POST: the hospital's subdomain answers again."""

    method_permissions = {"POST": IsPlatformStaff}

    @extend_schema(request=None, responses=HospitalSerializer, summary="Reactivate")
    def post(self, request, slug: str):
        return Response(HospitalSerializer(services.hospital_reactivate(hospital=_hospital(slug))).data)


class PlatformAuditView(PlatformView, AuditEventListView):
    method_permissions = {"GET": IsPlatformStaff}  # the platform's trail
