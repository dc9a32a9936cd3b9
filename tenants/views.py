"""The platform API, on BASE_DOMAIN, for platform staff: onboarding and running hospitals."""

from django.shortcuts import get_object_or_404
from django_tenants.utils import tenant_context
from drf_spectacular.utils import extend_schema
from rest_framework import filters, serializers, status
from rest_framework.generics import ListAPIView, ListCreateAPIView, RetrieveUpdateAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsPlatformStaff
from accounts.serializers import CanonicalEmailField
from core.api import MethodPermissions
from sso.selectors import sso_status
from tenants import selectors, services
from tenants.models import SLUG_MAX_LENGTH, Hospital


class HospitalSerializer(serializers.ModelSerializer):
    domain = serializers.SerializerMethodField()

    class Meta:
        model = Hospital
        fields = ("slug", "name", "domain", "is_active", "created")
        read_only_fields = ("slug", "domain", "is_active", "created")

    def get_domain(self, hospital) -> str:
        return services.hospital_host(hospital.slug)


class HospitalOnboardSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=SLUG_MAX_LENGTH)
    admin_email = CanonicalEmailField()
    admin_first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    admin_last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class HospitalListCreateView(ListCreateAPIView):
    """GET: hospitals, paginated, ?search= on name and slug. POST: onboard one (its admin is invited)."""

    permission_classes = [IsPlatformStaff]
    serializer_class = HospitalSerializer
    filter_backends = [filters.SearchFilter]
    search_fields = ["name", "slug"]

    def get_queryset(self):
        return selectors.hospital_list()

    def create(self, request, *args, **kwargs):
        data = HospitalOnboardSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hospital = services.hospital_create(**data.validated_data)
        return Response(HospitalSerializer(hospital).data, status=status.HTTP_201_CREATED)


class HospitalDetailView(RetrieveUpdateAPIView):
    """GET a hospital; PATCH/PUT its name."""

    permission_classes = [IsPlatformStaff]
    serializer_class = HospitalSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return selectors.hospital_list()

    def perform_update(self, serializer):
        services.hospital_update(
            hospital=serializer.instance, name=serializer.validated_data.get("name", serializer.instance.name)
        )


def _hospital(slug: str) -> Hospital:
    return get_object_or_404(selectors.hospital_list(), slug=slug)


class HospitalSuspendView(APIView):
    """POST: the hospital's subdomain stops answering (403) until reactivated; nothing is deleted."""

    permission_classes = [IsPlatformStaff]

    def post(self, request, slug: str):
        return Response(HospitalSerializer(services.hospital_suspend(hospital=_hospital(slug))).data)


class HospitalReactivateView(APIView):
    permission_classes = [IsPlatformStaff]

    def post(self, request, slug: str):
        return Response(HospitalSerializer(services.hospital_reactivate(hospital=_hospital(slug))).data)


class HospitalSsoSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    configured = serializers.BooleanField()
    enabled = serializers.BooleanField()
    issuer = serializers.CharField()
    sso_required = serializers.BooleanField()
    linked_identities = serializers.IntegerField()


@extend_schema(
    tags=["platform"],
    summary="Which hospitals sign in with single sign-on",
    description="Per hospital: whether an IdP is configured and enabled, its issuer, whether SSO is required, "
    "how many identities are linked. Never the client id or secret. One query per hospital of the page.",
    responses={200: HospitalSsoSerializer(many=True)},
)
class HospitalSsoListView(MethodPermissions, ListAPIView):
    method_permissions = {"GET": IsPlatformStaff}
    serializer_class = HospitalSsoSerializer

    def get_queryset(self):
        return selectors.hospital_list()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        rows = []
        for hospital in page or []:
            with tenant_context(hospital):  # each hospital's configuration lives in its schema
                rows.append({"slug": hospital.slug, "name": hospital.name, **sso_status()})
        return self.get_paginated_response(HospitalSsoSerializer(rows, many=True).data)
