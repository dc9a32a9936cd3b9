"""A hospital's schema points at public rows (accounts, permissions) without database constraints.

PostgreSQL enforces a foreign key with triggers on the table it points at, so a constraint from every
hospital's schema would pile triggers onto `public.accounts_user` with each hospital (12 a hospital), and
every write of an account would pay for all of them (core/crossschema.py). These tests hold the catalog
to that, whichever way a hospital's schema was made, and check that what the constraints did is still
done: grants go with a deleted account, and an account that holds a role is not deleted.
"""

import uuid
from datetime import date

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import ProtectedError
from django_tenants.utils import schema_context, tenant_context
from guardian.shortcuts import assign_perm

from accounts.models import User
from accounts.services import user_create_verified
from hospitals.models import Patient, PatientUserObjectPermission
from staff.models import StaffMember
from staff.services import staff_member_create
from tenants.models import SpareSchema
from tenants.provisioning import spare_pool_lock, spare_pool_refill, spare_schema_create
from tenants.services import hospital_create
from tests.support import PASSWORD, unique_email
from tests.test_provisioning import drain_pool

PUBLIC_TABLES = ("accounts_user", "auth_permission", "auth_group", "django_content_type")


@pytest.fixture(autouse=True)
def refilling_worker(celery_worker):
    """Onboarding publishes a refill; the suite's worker takes it (after a test lets go of the pool)."""


def constraints_leaving(schema_name: str) -> list[tuple[str, str, str]]:
    """Foreign keys of the schema's tables that point into another schema: (table, constraint, target)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, c.conname, c.confrelid::regclass::text
            FROM pg_constraint c
            JOIN pg_class t ON t.oid = c.conrelid
            JOIN pg_class r ON r.oid = c.confrelid
            WHERE c.contype = 'f' AND t.relnamespace = %s::regnamespace AND r.relnamespace <> t.relnamespace
            """,
            [schema_name],
        )
        return cursor.fetchall()


def foreign_keys(schema_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
            " WHERE c.contype = 'f' AND t.relnamespace = %s::regnamespace",
            [schema_name],
        )
        return cursor.fetchone()[0]


def triggers_on_public_tables() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, (SELECT count(*) FROM pg_trigger WHERE tgrelid = c.oid)"
            " FROM pg_class c WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%s)",
            [list(PUBLIC_TABLES)],
        )
        return dict(cursor.fetchall())


def new_slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("from_spare", [True, False], ids=["spare", "migrated"])
def test_a_new_hospital_adds_no_trigger_to_public_tables(from_spare):
    with spare_pool_lock():
        if from_spare:
            spare_pool_refill(size=1)
        else:  # an empty pool: the schema is made and migrated in the onboarding's transaction
            drain_pool()
        before = triggers_on_public_tables()
        hospital = hospital_create(name="Triggers", slug=new_slug("trig"), admin_email=unique_email())
        assert triggers_on_public_tables() == before
    assert constraints_leaving(hospital.schema_name) == []
    # Its own tables still hold each other to account (patients to departments, grants to patients...).
    assert foreign_keys(hospital.schema_name) > 0


def test_spare_schemas_have_no_constraint_on_public_rows():
    with spare_pool_lock():
        spare_pool_refill(size=1)
        names = list(SpareSchema.objects.values_list("schema_name", flat=True))
        assert names
        for name in names:
            assert constraints_leaving(name) == [], name


def test_making_a_spare_does_not_wait_for_account_writes_under_way():
    """A spare is made in one transaction, after every onboarding: it must not lock the public tables (a
    constraint would, on `accounts_user` until it commits: every login's `last_login` would wait for it)."""
    params = connection.get_connection_params()
    keys = ("dbname", "user", "password", "host", "port")
    with spare_pool_lock():  # first: the suite's worker must not start a refill that would wait for the writer
        writer = psycopg.connect(**{key: params[key] for key in keys if params.get(key)}, autocommit=False)
        try:
            writer.execute("LOCK TABLE public.accounts_user IN ROW EXCLUSIVE MODE")  # what any account write holds
            with connection.cursor() as cursor:
                # A limit only against a hang: waiting at all is the failure, and it would wait for the writer.
                cursor.execute("SET lock_timeout = '60s'")
            try:
                spare = spare_schema_create()
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("RESET lock_timeout")
        finally:
            writer.rollback()
            writer.close()
    assert constraints_leaving(spare.schema_name) == []


def test_deleting_an_account_takes_its_grants_in_its_hospital(hospital_a):
    """What ON DELETE did in the database, Django's collector does in the account's schema."""
    with tenant_context(hospital_a):
        nurse = user_create_verified(hospital=hospital_a, email=unique_email("nurse"), password=PASSWORD)
        patient = Patient.objects.create(
            mrn=f"X-{uuid.uuid4().hex[:10]}", first_name="Ada", last_name="Grant", date_of_birth=date(1990, 1, 1)
        )
        assign_perm("hospitals.view_patient", nurse, patient)
        assert PatientUserObjectPermission.objects.filter(user=nurse).count() == 1
        with transaction.atomic():
            nurse.delete()
        assert not PatientUserObjectPermission.objects.filter(user_id=nurse.pk).exists()
        assert Patient.objects.filter(pk=patient.pk).exists()


def test_an_account_holding_a_role_is_not_deleted(hospital_a):
    with tenant_context(hospital_a):
        doctor = user_create_verified(hospital=hospital_a, email=unique_email("doc"), password=PASSWORD)
        staff_member_create(user=doctor, role=StaffMember.Role.DOCTOR)
        with pytest.raises(ProtectedError), transaction.atomic():
            doctor.delete()
    with schema_context("public"):
        assert User.objects.filter(pk=doctor.pk).exists()
