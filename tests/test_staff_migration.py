"""Moving staff members, departments and invitations from `hospitals` to `staff` keeps every row and grant.

A hospital and a spare schema are taken back to the state before the move (tables under `hospitals`' names,
content types in public labelled `hospitals`, the move's migrations unrecorded), filled there with staff,
a department and its head's grant, patients, a care team, an invitation and guardian rows, written with
the models of that state. Then `migrate_schemas` runs as a deploy does (public, hospitals, spares), and the
rows, the ids of content types and permissions, and what the grants give are checked with today's code.
"""

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from accounts.services import user_create_verified
from core.api import ServiceError
from hospitals import permissions as perms
from hospitals import selectors
from hospitals.models import CareTeamMembership, Patient
from staff import services as staff_services
from staff.models import Department, Invitation, StaffMember
from tenants.management.commands.migrate_schemas import Command as MigrateSchemasCommand
from tenants.models import SpareSchema
from tenants.provisioning import migration_fingerprint, spare_pool_lock, spare_schema_create, spare_schema_drop
from tenants.services import hospital_create
from tests.support import PASSWORD, unique_email
from tests.test_provisioning import migration_rows, tables, tenant_tables, unapplied

MOVED = ("staffmember", "department", "invitation", "departmentuserobjectpermission", "departmentgroupobjectpermission")
# The migrations of the move; before it, no schema had them.
MOVE = [
    ("tenants", "0003_staff_content_types"),
    ("staff", "0001_initial"),
    ("hospitals", "0005_staff_models_moved"),
    ("audit", "0003_staff_role_changed"),
]
BEFORE = {"hospitals": "0004_patient_registered_by", "audit": "0002_append_only", "tenants": "0002_spareschema"}


@pytest.fixture(autouse=True)
def refilling_worker(celery_worker):
    """Onboarding publishes a refill; the suite's worker takes it (after this test lets go of the pool)."""


def rewind_tenant_schema(schema_name: str) -> None:
    """The schema as it was before the move: staff's migrations unapplied, tables back under hospitals' names."""
    for app in ("staff", "audit"):
        target = BEFORE.get(app, "zero")
        call_command("migrate_schemas", app, target, schema_name=schema_name, interactive=False, verbosity=0)
    assert not {app for app, _ in migration_rows(schema_name)} & {"staff"}
    assert {f"hospitals_{model}" for model in MOVED} <= tables(schema_name)


def rewind_public() -> None:
    """Content types labelled `hospitals` again and the move unrecorded, as public was before the deploy."""
    # Later migrations of these apps (made after the move) are unapplied for real first: the deploy below
    # applies them again.
    for app, name in MOVE:
        if app != "staff":
            call_command("migrate_schemas", app, name, schema_name="public", interactive=False, verbosity=0)
    with schema_context("public"), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_content_type SET app_label = 'hospitals' WHERE app_label = 'staff' AND model = ANY(%s)",
            [list(MOVED)],
        )
        # The move and every later migration of its apps (e.g. audit's new actions): none had run before it.
        for app, name in MOVE:
            cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name >= %s", [app, name])
    ContentType.objects.clear_cache()


def models_before_the_move():
    """The models as the migrations before the move left them (no code of today's `staff` involved)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    nodes = [(app, BEFORE.get(app, name)) for app, name in loader.graph.leaf_nodes() if app != "staff"]
    return loader.project_state(nodes).apps


def fill_before_the_move(hospital, accounts: dict[str, User], token: str) -> dict[str, int]:
    """Rows and grants written with the old models; returns their ids."""
    old = models_before_the_move()
    OldPermission = old.get_model("auth", "Permission")
    OldContentType = old.get_model("contenttypes", "ContentType")

    def permission(model: str, codename: str):
        return OldPermission.objects.get(
            content_type__app_label="hospitals", content_type__model=model, codename=codename
        )

    with schema_context(hospital.schema_name):
        Staff = old.get_model("hospitals", "StaffMember")
        OldDepartment = old.get_model("hospitals", "Department")
        OldPatient = old.get_model("hospitals", "Patient")
        doctor = Staff.objects.create(user_id=accounts["doctor"].pk, role="doctor")
        nurse = Staff.objects.create(user_id=accounts["nurse"].pk, role="nurse")
        desk = Staff.objects.create(user_id=accounts["desk"].pk, role="receptionist")
        department = OldDepartment.objects.create(name="Cardiology", code="cardio", head=doctor)
        Staff.objects.filter(pk__in=[doctor.pk, nurse.pk]).update(department=department)
        old.get_model("hospitals", "DepartmentUserObjectPermission").objects.create(
            user_id=doctor.user_id,
            permission=permission("department", "view_department_patients"),
            content_object=department,
        )
        in_department, on_team = (
            OldPatient.objects.create(
                mrn=f"OLD-{uuid.uuid4().hex[:8]}",
                first_name="Old",
                last_name=name,
                date_of_birth="1970-01-01",
                department=department if name == "Ward" else None,
                registered_by=desk,
            )
            for name in ("Ward", "Team")
        )
        old.get_model("hospitals", "CareTeamMembership").objects.create(patient=on_team, staff=nurse, role="nurse")
        grants = old.get_model("hospitals", "PatientUserObjectPermission").objects
        for codename in (perms.VIEW, perms.CLINICAL, perms.ADD_NOTE):
            grants.create(user_id=nurse.user_id, permission=permission("patient", codename), content_object=on_team)
        for patient in (in_department, on_team):
            grants.create(user_id=desk.user_id, permission=permission("patient", perms.VIEW), content_object=patient)
        # A generic guardian row (content type + text pk) on a moved model.
        old.get_model("guardian", "UserObjectPermission").objects.create(
            user_id=nurse.user_id,
            permission=permission("staffmember", "change_staffmember"),
            content_type=OldContentType.objects.get(app_label="hospitals", model="staffmember"),
            object_pk=str(nurse.pk),
        )
        invitation = old.get_model("hospitals", "Invitation").objects.create(
            email=accounts["invitee"].email,
            role="nurse",
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            expires_at=timezone.now() + timedelta(days=7),
        )
    return {
        "doctor": doctor.pk,
        "nurse": nurse.pk,
        "desk": desk.pk,
        "department": department.pk,
        "in_department": in_department.pk,
        "on_team": on_team.pk,
        "invitation": invitation.pk,
    }


def test_a_hospital_from_before_the_staff_app_migrates_forward_with_its_rows_and_grants(api_for):
    hospital = hospital_create(
        name="Before Staff",
        slug=f"pre-staff-{uuid.uuid4().hex[:8]}",
        admin_email=unique_email("admin"),
        admin_password=PASSWORD,
    )
    accounts = {
        role: user_create_verified(hospital=hospital, email=unique_email(role), password=PASSWORD)
        for role in ("doctor", "nurse", "desk")
    }
    accounts["invitee"] = User.objects.create_user(unique_email("invitee"), None, hospital=hospital, is_active=False)
    token = uuid.uuid4().hex
    content_types = {model: ContentType.objects.get(app_label="staff", model=model).pk for model in MOVED}
    head_permission = Permission.objects.get(codename="view_department_patients").pk

    with spare_pool_lock():
        spare = spare_schema_create()
        try:
            rewind_tenant_schema(hospital.schema_name)
            rewind_tenant_schema(spare.schema_name)
            SpareSchema.objects.filter(pk=spare.pk).update(fingerprint="before-the-staff-app")
            rewind_public()
            ids = fill_before_the_move(hospital, accounts, token)

            call_command(MigrateSchemasCommand(), interactive=False, verbosity=0)  # as a deploy does
        except BaseException:
            call_command(MigrateSchemasCommand(), interactive=False, verbosity=0)  # leave the database current
            raise

        # Public: the same content type and permission ids, under the new label; nothing left under the old.
        assert {model: ContentType.objects.get(app_label="staff", model=model).pk for model in MOVED} == content_types
        assert not ContentType.objects.filter(app_label="hospitals", model__in=MOVED).exists()
        assert Permission.objects.get(codename="view_department_patients").pk == head_permission
        assert Permission.objects.get(codename="view_department_patients").content_type.app_label == "staff"
        # Both schemas: fully migrated, the tables under staff's names; the spare claimable again.
        spare.refresh_from_db()
        assert spare.fingerprint == migration_fingerprint()
        for schema_name in (hospital.schema_name, spare.schema_name):
            assert tables(schema_name) == tenant_tables()
            assert {f"staff_{model}" for model in MOVED} <= tables(schema_name)
            assert unapplied(schema_name) == []
        spare_schema_drop(schema_name=spare.schema_name)

    with tenant_context(hospital):
        doctor, nurse, desk = (StaffMember.objects.get(pk=ids[role]) for role in ("doctor", "nurse", "desk"))
        department = Department.objects.get(pk=ids["department"])
        in_department, on_team = Patient.objects.get(pk=ids["in_department"]), Patient.objects.get(pk=ids["on_team"])
        assert (doctor.role, doctor.user_id, doctor.department) == ("doctor", accounts["doctor"].pk, department)
        assert department.head == doctor and set(department.staff.all()) == {doctor, nurse}
        assert in_department.department == department and in_department.registered_by == desk
        assert CareTeamMembership.objects.get(patient=on_team).staff == nurse
        assert Invitation.objects.get(pk=ids["invitation"]).status == "pending"

        # The grants mean what they meant: care team, department head, front desk, a generic guardian row.
        assert perms.patient_perms(nurse, on_team) == {perms.VIEW, perms.CLINICAL, perms.ADD_NOTE}
        assert perms.patient_perms(doctor, in_department) == {perms.VIEW, perms.CLINICAL}
        assert list(selectors.patient_list(staff=doctor)) == [in_department]
        assert set(selectors.patient_list(staff=desk)) == {in_department, on_team}
        assert User.objects.get(pk=nurse.user_id).has_perm("staff.change_staffmember", nurse)
        assert not User.objects.get(pk=doctor.user_id).has_perm("staff.change_staffmember", nurse)

        # Role changes still refuse, and move the grants, on the old rows.
        for member, code in ((nurse, "on_care_teams"), (doctor, "heads_department")):
            with pytest.raises(ServiceError) as refused:
                staff_services.staff_member_update(staff=member, role=StaffMember.Role.RECEPTIONIST)
            assert refused.value.code == code
        staff_services.department_update(department=department, head=None)
        assert perms.patient_perms(StaffMember.objects.get(pk=doctor.pk), in_department) == frozenset()
        # The invitation sent before the move is accepted after it.
        invitee = staff_services.invitation_accept(hospital=hospital, token=token, password=PASSWORD)
        assert StaffMember.objects.get(user=invitee).role == StaffMember.Role.NURSE

    # And over HTTP, as the nurse: her patient, with its clinical record.
    nurse_api = api_for(hospital)
    nurse_api.login(accounts["nurse"].email)
    listed = nurse_api.get("/api/patients/").json()["results"]
    assert [p["id"] for p in listed] == [ids["on_team"]]
    assert nurse_api.get(f"/api/patients/{ids['on_team']}/notes/").status_code == 200
