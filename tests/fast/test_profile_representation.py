"""The profile (`GET /accounts/user/`) is written out by hand for speed; it must say what its declared fields say."""

from rest_framework import serializers

from accounts.serializers import UserDetailsSerializer
from accounts.services import user_create_verified


def fields_say(user) -> dict:
    """DRF's own representation from the declared fields (what the OpenAPI schema and PUT/PATCH describe)."""
    return dict(serializers.Serializer.to_representation(UserDetailsSerializer(user), user))


def test_a_hospital_account_reads_as_its_fields_say(in_hospital):
    user = user_create_verified(
        hospital=in_hospital,
        email="Reader@Example.org",
        password="fast-tier-password-1",
        first_name="Ada",
        last_name="Lovelace",
    )
    data = UserDetailsSerializer(user).data
    assert data == fields_say(user)
    assert data["hospital"] == in_hospital.slug and data["name"] == "Ada Lovelace"
    assert list(data) == list(UserDetailsSerializer().fields)  # no field left out, none added, same order


def test_a_platform_account_has_no_hospital():
    user = user_create_verified(
        hospital=None, email="operator@platform.example", password="fast-tier-password-1", last_name="Ng"
    )
    assert UserDetailsSerializer(user).data == fields_say(user) == {**fields_say(user), "hospital": None}
