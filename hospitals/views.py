"""The hospital's own API, on its subdomain."""
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.generics import ListCreateAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsTenantMember
from hospitals import services
from hospitals.models import Invitation, StaffMember
from hospitals.permissions import IsHospitalAdmin


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ("id", "email", "role", "status", "invited_by", "created", "expires_at", "accepted_at",
                  "revoked_at")


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=StaffMember.Role.choices)


class InvitationListCreateView(ListCreateAPIView):
    """GET: the hospital's invitations (newest first). POST {email, role}: invite by email."""

    permission_classes = [IsTenantMember & IsHospitalAdmin]
    serializer_class = InvitationSerializer

    def get_queryset(self):
        return Invitation.objects.select_related("invited_by")

    def create(self, request, *args, **kwargs):
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(hospital=request.tenant, invited_by=request.user,
                                                **data.validated_data)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationRevokeView(APIView):
    """DELETE: revoke a pending invitation."""

    permission_classes = [IsTenantMember & IsHospitalAdmin]

    def delete(self, request, pk: int):
        services.invitation_revoke(invitation=get_object_or_404(Invitation, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
