"""Creating hospitals: schema, domain and admin, all or nothing; and where object permissions live."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import tenant_context
from guardian.shortcuts import assign_perm, get_objects_for_user

from accounts.services import user_create_verified
from core.api import ServiceError
from staff.models import StaffMember
from tenants.models import Domain, Hospital
from tenants.services import hospital_create
from tests.support import PASSWORD, unique_email


def schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'h\\_%'")
        return {row[0] for row in cursor.fetchall()}


def snapshot():
    from django.contrib.auth import get_user_model

    return (schemas(), Hospital.objects.count(), Domain.objects.count(), get_user_model().objects.count())


def test_create_hospital_command_makes_schema_domain_and_admin(api_for, capsys):
    email = unique_email("admin")
    call_command(
        "create_hospital",
        "--name",
        "St. Mary",
        "--slug",
        "stmary",
        "--admin-email",
        email,
        "--admin-password",
        PASSWORD,
    )
    hospital = Hospital.objects.get(slug="stmary")
    assert hospital.schema_name == "h_stmary" and "h_stmary" in schemas()
    assert hospital.domains.get().domain == "stmary.localhost"
    with tenant_context(hospital):
        assert StaffMember.objects.get(user__email=email).role == StaffMember.Role.HOSPITAL_ADMIN
    # The admin can log in on the new subdomain straight away.
    assert api_for(hospital).login(email).json()["user"]["hospital"] == "stmary"

    before = snapshot()
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_hospital", "--name", "Other", "--slug", "stmary", "--admin-email", unique_email())
    assert snapshot() == before


@pytest.mark.parametrize(
    "slug, code",
    [
        ("www", "slug_reserved"),
        ("api", "slug_reserved"),
        ("public", "slug_reserved"),
        ("Bad Slug", "slug_invalid"),
        ("-edge", "slug_invalid"),
        ("under_score", "slug_invalid"),
        ("x" * 51, "slug_invalid"),
        ("", "slug_invalid"),
    ],
)
def test_invalid_or_reserved_slugs_are_refused(slug, code):
    before = snapshot()
    with pytest.raises(ServiceError) as error:
        hospital_create(name="X", slug=slug, admin_email=unique_email())
    assert error.value.code == code
    assert snapshot() == before


def test_an_invalid_admin_email_leaves_nothing_behind():
    before = snapshot()
    with pytest.raises(ServiceError) as error:
        hospital_create(name="Gamma", slug="gamma", admin_email="admin\u0131@example.org")  # dotless ı
    assert error.value.code == "email_invalid"
    assert snapshot() == before


def test_object_permissions_stay_in_their_hospital(hospital_a, hospital_b):
    """guardian in TENANT_APPS, contenttypes/auth shared: ids line up, rows stay per schema.

    B was created after A. Primary keys repeat from schema to schema, which is
    exactly where a guardian table shared by all hospitals would leak.
    """
    user_a = user_create_verified(hospital=hospital_a, email=unique_email(), password=PASSWORD)
    user_b = user_create_verified(hospital=hospital_b, email=unique_email(), password=PASSWORD)
    with tenant_context(hospital_a):
        record_a = StaffMember.objects.create(user=user_a, role=StaffMember.Role.NURSE)
        assign_perm("staff.view_staffmember", user_a, record_a)
    with tenant_context(hospital_b):
        record_b = StaffMember.objects.create(user=user_b, role=StaffMember.Role.NURSE)
        assign_perm("staff.change_staffmember", user_b, record_b)

    with tenant_context(hospital_a):
        a = type(user_a).objects.get(pk=user_a.pk)
        b = type(user_b).objects.get(pk=user_b.pk)
        assert a.has_perm("staff.view_staffmember", record_a)
        assert not b.has_perm("staff.change_staffmember", StaffMember.objects.get(pk=record_a.pk))
        assert list(get_objects_for_user(a, "staff.view_staffmember", accept_global_perms=False)) == [record_a]
        assert not get_objects_for_user(b, "staff.change_staffmember", accept_global_perms=False).exists()
    with tenant_context(hospital_b):
        a = type(user_a).objects.get(pk=user_a.pk)
        b = type(user_b).objects.get(pk=user_b.pk)
        assert b.has_perm("staff.change_staffmember", record_b)
        assert not a.has_perm("staff.view_staffmember", StaffMember.objects.get(pk=record_b.pk))
        assert list(get_objects_for_user(b, "staff.change_staffmember", accept_global_perms=False)) == [record_b]
        assert not get_objects_for_user(a, "staff.view_staffmember", accept_global_perms=False).exists()


def test_identity_tables_live_only_in_public_and_permissions_per_hospital(hospital_a):
    """The user, its emails and its tokens exist once; a hospital schema holds its own guardian rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('public', %s)",
            [hospital_a.schema_name],
        )
        tables = cursor.fetchall()
    in_hospital = {name for schema, name in tables if schema == hospital_a.schema_name}
    in_public = {name for schema, name in tables if schema == "public"}
    identity = {
        "accounts_user",
        "account_emailaddress",
        "token_blacklist_outstandingtoken",
        "token_blacklist_blacklistedtoken",
        "auth_permission",
        "django_content_type",
    }
    assert identity <= in_public
    assert not identity & in_hospital
    assert {"guardian_userobjectpermission", "staff_staffmember", "hospitals_patient"} <= in_hospital
    assert not {"guardian_userobjectpermission", "staff_staffmember", "hospitals_patient"} & in_public


def test_patient_grants_line_up_in_hospitals_migrated_at_different_times(hospital_a):
    """The known trap: per-schema content types would make guardian rows mean different permissions.

    A hospital created now, whose patient tables then arrive by a later
    migration (rolled back and applied again), grants and checks exactly like
    hospital A: one content type and permission id space, rows per schema.
    """
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from hospitals.models import Patient
    from hospitals.services import patient_create

    late = hospital_create(name="Late", slug="late-migrated", admin_email=unique_email(), admin_password=PASSWORD)
    call_command("migrate_schemas", "hospitals", "0002", schema_name=late.schema_name, interactive=False, verbosity=0)
    with tenant_context(late):
        assert "hospitals_patient" not in connection.introspection.table_names()
    call_command("migrate_schemas", schema_name=late.schema_name, interactive=False, verbosity=0)

    users, patients, content_types = {}, {}, set()
    for hospital in (hospital_a, late):
        users[hospital.slug] = user_create_verified(hospital=hospital, email=unique_email(), password=PASSWORD)
        with tenant_context(hospital):
            admin = StaffMember.objects.filter(role=StaffMember.Role.HOSPITAL_ADMIN).first()
            patients[hospital.slug] = patient_create(
                created_by=admin,
                mrn=f"TRAP-{unique_email()[:10]}",
                first_name="T",
                last_name="Rap",
                date_of_birth="1990-01-01",
            )
            assign_perm("hospitals.change_patient", users[hospital.slug], patients[hospital.slug])
            content_types.add(ContentType.objects.get(app_label="hospitals", model="patient").pk)
    assert len(content_types) == 1
    assert Permission.objects.filter(codename="change_patient").count() == 1  # one id space, in public

    for hospital, other in ((hospital_a, late), (late, hospital_a)):
        with tenant_context(hospital):
            mine = type(users[hospital.slug]).objects.get(pk=users[hospital.slug].pk)
            theirs = type(users[other.slug]).objects.get(pk=users[other.slug].pk)
            patient = Patient.objects.get(pk=patients[hospital.slug].pk)
            assert mine.has_perm("hospitals.change_patient", patient)
            assert not mine.has_perm("hospitals.view_patient", patient)
            assert not theirs.has_perm("hospitals.change_patient", patient)
            assert list(get_objects_for_user(mine, "hospitals.change_patient", Patient, accept_global_perms=False)) == [
                patient
            ]
            assert not get_objects_for_user(
                theirs, "hospitals.change_patient", Patient, accept_global_perms=False
            ).exists()
