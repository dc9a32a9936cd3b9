"""Who may see and do what in a hospital's workspace, checked over real HTTP against the rules.

- hospital_admin: everything in its hospital, including care-team add/remove;
- a care-team member: view the patient, its clinical record (notes, care team), add notes;
  a doctor on the team may also change the patient;
- a department head: view the patients of the department and their clinical record, read-only;
- a receptionist: register patients, view the demographics of those they registered, nothing clinical;
- anyone else: nothing. A patient one may not view is a 404, not a 403; no active role is a 403
  on every workspace endpoint; no credentials is a 401.

The module builds one small hospital world (in hospital A, plus a few records in hospital B) once.
Tests that change grants make their own fresh staff, patients and departments, so the shared world
stays as described whatever order the tests run in.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

import pytest
from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from hospitals import services
from hospitals.models import CareTeamMembership, ClinicalNote, Patient
from staff import services as staff_services
from staff.models import Department, StaffMember
from tenants.services import hospital_host
from tests.support import PASSWORD, Api, link_in, unique_email

# Marks this module's world patients, so searches never pick up other tests' patients.
MARK = f"perm{uuid.uuid4().hex[:8]}"
_numbers = itertools.count(1)

VIEW, CHANGE, CLINICAL, NOTE = "view_patient", "change_patient", "view_clinical", "add_note"

ADMIN, DOCTOR, NURSE, RECEPTIONIST = (
    StaffMember.Role.HOSPITAL_ADMIN,
    StaffMember.Role.DOCTOR,
    StaffMember.Role.NURSE,
    StaffMember.Role.RECEPTIONIST,
)

ROLES = [
    "admin",
    "doctor_team",
    "nurse_team",
    "head",
    "rec_registrar",
    "rec_other",
    "doctor_other",
    "nurse_other",
    "no_role",
]


def unique_number() -> int:
    return next(_numbers)


@dataclass
class Actor:
    """A logged-in account of one hospital: `api` carries its cookies, `token` its access token."""

    name: str
    user: object
    staff: StaffMember | None
    api: Api
    token: str


def actor(server_url, hospital, name: str, role: str | None, **names) -> Actor:
    user = user_create_verified(hospital=hospital, email=unique_email(name), password=PASSWORD, **names)
    staff = None
    if role is not None:
        with tenant_context(hospital):
            staff = staff_services.staff_member_create(user=user, role=role)
    api = Api(server_url, hospital_host(hospital.slug))
    token = api.login(user.email).json()["access"]
    return Actor(name, user, staff, api, token)


def fresh_staff(hospital, role: str = NURSE) -> StaffMember:
    """A staff member who never logs in (no password: no hashing), for care-team writes."""
    user = user_create_verified(hospital=hospital, email=unique_email(f"fresh-{role}"), password=None)
    with tenant_context(hospital):
        return staff_services.staff_member_create(user=user, role=role)


def patient_body(**overrides) -> dict:
    n = unique_number()
    return {
        "mrn": f"F{n}-{uuid.uuid4().hex[:10]}",
        "first_name": "Fresh",
        "last_name": f"Fresh{n}",
        "date_of_birth": "1975-05-06",
        "sex": "female",
        **overrides,
    }


def created(response, status: int = 201) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["detail"] and body["code"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def ids_of(response) -> set[int]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["results"]) and body["next"] is None, "more than one page"
    return {p["id"] for p in body["results"]}


def all_listed_ids(api: Api, query: str = "") -> set[int]:
    """Every id on every page (an admin's list can outgrow one page while the suite runs)."""
    found, page = [], 1
    while True:
        response = api.get(f"/api/patients/?page_size=100&page={page}{query}")
        assert response.status_code == 200, response.text
        body = response.json()
        found += [p["id"] for p in body["results"]]
        if body["next"] is None:
            assert len(found) == body["count"] == len(set(found))
            return set(found)
        page += 1


def hospital_patient_ids(hospital) -> set[int]:
    with tenant_context(hospital):
        return set(Patient.objects.values_list("pk", flat=True))


@dataclass
class World:
    hospital_a: object
    hospital_b: object
    server_url: str
    actors: dict[str, Actor]
    patients: dict[str, int]  # P1..P4 in A; "B", "B_guessed" in B
    mrns: dict[str, str]
    names: dict[str, tuple[str, str]]
    departments: dict[str, int]  # D1, D2 in A
    b_admin: Actor
    b_membership: int  # a care-team membership of patient "B", in B

    def api_b(self) -> Api:
        return Api(self.server_url, hospital_host(self.hospital_b.slug))


@pytest.fixture(scope="module")
def world(server_url, hospital_a, hospital_b) -> World:
    """Hospital A:

    - D1 "Cardiology" headed by `head` (a doctor, on no care team); D2 "Oncology" headed by `head2`;
    - P1 (D1): registered by `rec_registrar`; care team `doctor_team` (attending) and `nurse_team`;
    - P2 (D2): registered by `admin`; care team `doctor2` — the patient nobody in ROLES relates to;
    - P3 (no department): registered by `rec_other`; care team `doctor_other`;
    - P4 (D1): registered by `admin`; no care team (seen by the head of D1 only, besides admins).

    `nurse_other` relates to nothing; `no_role` is an account of A with no StaffMember.
    Hospital B: its admin, patient "B" with the same id as P1 (so "same id" probes are real), patient
    "B_guessed" with an id that exists nowhere in A.
    """

    def make(name, role, **names):
        return actor(server_url, hospital_a, name, role, **names)

    actors = {
        "admin": make("admin", ADMIN, first_name="Ada", last_name="Admin"),
        "doctor_team": make("doctor-team", DOCTOR, first_name="Dora", last_name="Team"),
        "nurse_team": make("nurse-team", NURSE, first_name="Nina", last_name="Team"),
        "head": make("head", DOCTOR, first_name="Hugo", last_name="Head"),
        "rec_registrar": make("rec-registrar", RECEPTIONIST, first_name="Rita", last_name="Registrar"),
        "rec_other": make("rec-other", RECEPTIONIST, first_name="Remy", last_name="Other"),
        "doctor_other": make("doctor-other", DOCTOR, first_name="Otto", last_name="Other"),
        "nurse_other": make("nurse-other", NURSE, first_name="Noor", last_name="Other"),
        "no_role": make("no-role", None, first_name="Nobody", last_name="Here"),
    }
    head2, doctor2 = fresh_staff(hospital_a, DOCTOR), fresh_staff(hospital_a, DOCTOR)
    admin = actors["admin"].api

    departments = {
        "D1": created(
            admin.post(
                "/api/departments/",
                json={"name": "Cardiology", "code": f"card-{MARK}", "head": actors["head"].staff.pk},
            )
        )["id"],
        "D2": created(
            admin.post("/api/departments/", json={"name": "Oncology", "code": f"onco-{MARK}", "head": head2.pk})
        )["id"],
    }
    # The head belongs to the department it heads (shown by /api/me/permissions/).
    assert (
        admin.patch(f"/api/staff/{actors['head'].staff.pk}/", json={"department": departments["D1"]}).status_code == 200
    )

    names = {
        "P1": ("Ada", f"Ashford{MARK}"),
        "P2": ("Bea", f"Brook{MARK}"),
        "P3": ("Cyd", f"Crane{MARK}"),
        "P4": ("Dot", f"Dale{MARK}"),
    }
    mrns = {key: f"MRN-{MARK}-{key}" for key in names}

    def register(api, key, department):
        first, last = names[key]
        return created(
            api.post(
                "/api/patients/",
                json={
                    "mrn": mrns[key],
                    "first_name": first,
                    "last_name": last,
                    "date_of_birth": "1980-01-02",
                    "sex": "female",
                    "department": department,
                },
            )
        )["id"]

    patients = {
        "P1": register(actors["rec_registrar"].api, "P1", departments["D1"]),
        "P2": register(admin, "P2", departments["D2"]),
        "P3": register(actors["rec_other"].api, "P3", None),
        "P4": register(admin, "P4", departments["D1"]),
    }

    def add(patient, staff, role):
        created(admin.post(f"/api/patients/{patients[patient]}/care-team/", json={"staff": staff.pk, "role": role}))

    add("P1", actors["doctor_team"].staff, "attending")
    add("P1", actors["nurse_team"].staff, "nurse")
    add("P2", doctor2, "attending")
    add("P3", actors["doctor_other"].staff, "consultant")

    # Hospital B: patient "B" reuses P1's id (B's sequence is its own), "B_guessed" an id unknown to A.
    b_admin = actor(server_url, hospital_b, "b-admin", ADMIN, first_name="Bob", last_name="Beta")
    with tenant_context(hospital_b):

        def b_patient(key, **extra):
            mrns[key] = f"MRN-{MARK}-{key}-{unique_number()}"
            return services.patient_create(
                created_by=b_admin.staff,
                mrn=mrns[key],
                first_name="Bee",
                last_name=f"Bravo{MARK}",
                date_of_birth="1990-03-04",
                **extra,
            )

        while not Patient.objects.filter(pk=patients["P1"]).exists():
            assert b_patient("B-filler").pk < patients["P1"] + 100, "hospital B's ids never reach P1's"
        patients["B"] = patients["P1"]
        mrns["B"] = Patient.objects.get(pk=patients["B"]).mrn
        # An explicit id far beyond any sequence: it exists in B and nowhere in A.
        patients["B_guessed"] = b_patient("B_guessed", id=9_000_000 + unique_number()).pk
        b_membership = services.care_team_add(
            patient=Patient.objects.get(pk=patients["B"]), staff=b_admin.staff, role="attending"
        ).pk
    assert patients["B_guessed"] not in hospital_patient_ids(hospital_a)

    return World(hospital_a, hospital_b, server_url, actors, patients, mrns, names, departments, b_admin, b_membership)


# 1. The permission matrix: role x endpoint x target, one exact status code per cell.

ENDPOINTS = [
    "get_patient",
    "patch_patient",
    "get_care_team",
    "post_care_team",
    "delete_care_team",
    "get_notes",
    "post_notes",
]
TARGETS = ["own", "other", "b_guessed_id", "b_host"]

# On "own" (P1), the patient each role relates to (or, for unrelated roles, does not).
#                    GET   PATCH  GET team  POST team  DELETE team  GET notes  POST notes
OWN = {
    "admin": (200, 200, 200, 201, 204, 200, 201),
    "doctor_team": (200, 200, 200, 403, 403, 200, 201),
    "nurse_team": (200, 403, 200, 403, 403, 200, 201),
    "head": (200, 403, 200, 403, 403, 200, 403),
    "rec_registrar": (200, 403, 403, 403, 403, 403, 403),
    "rec_other": (404, 404, 404, 404, 404, 404, 404),
    "doctor_other": (404, 404, 404, 404, 404, 404, 404),
    "nurse_other": (404, 404, 404, 404, 404, 404, 404),
    "no_role": (403, 403, 403, 403, 403, 403, 403),
}


def expected_status(role: str, endpoint: str, target: str) -> int:
    column = ENDPOINTS.index(endpoint)
    if target == "b_host":  # A's credentials on B's subdomain
        return 401
    if role == "no_role":
        return 403
    if target == "own":
        return OWN[role][column]
    if target == "other" and role == "admin":
        return OWN["admin"][column]
    return 404  # P2 for everyone but admins; an id that only hospital B has, for everyone


def membership_exists(hospital, pk: int) -> bool:
    with tenant_context(hospital):
        return CareTeamMembership.objects.filter(pk=pk).exists()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(world, role, endpoint, target):
    who = world.actors[role]
    hospital = world.hospital_b if target == "b_host" else world.hospital_a
    if target == "b_host":
        api, token, patient = world.api_b(), who.token, world.patients["B"]
    else:
        api, token = who.api, None
        patient = {
            "own": world.patients["P1"],
            "other": world.patients["P2"],
            "b_guessed_id": world.patients["B_guessed"],
        }[target]
    base = f"/api/patients/{patient}/"
    expected = expected_status(role, endpoint, target)

    with tenant_context(hospital):
        notes_before = ClinicalNote.objects.filter(patient_id=patient).count()
        phone_before = Patient.objects.filter(pk=patient).values_list("phone", flat=True).first()

    if endpoint == "get_patient":
        response = api.get(base, token=token)
    elif endpoint == "patch_patient":
        phone = f"555-{unique_number():04d}"
        response = api.patch(base, json={"phone": phone}, token=token)
    elif endpoint == "get_care_team":
        response = api.get(base + "care-team/", token=token)
    elif endpoint == "post_care_team":
        # A fresh staff member of the hospital being called: the fixture's teams stay as they are.
        newcomer = fresh_staff(hospital)
        response = api.post(base + "care-team/", json={"staff": newcomer.pk, "role": "nurse"}, token=token)
    elif endpoint == "delete_care_team":
        # A fresh membership to delete, on the patient being probed (in the hospital that has it).
        if target == "b_host":
            member = world.b_membership
        elif target == "b_guessed_id":
            with tenant_context(world.hospital_b):
                member = services.care_team_add(
                    patient=Patient.objects.get(pk=patient), staff=fresh_staff(world.hospital_b), role="other"
                ).pk
        else:
            with tenant_context(world.hospital_a):
                member = services.care_team_add(
                    patient=Patient.objects.get(pk=patient), staff=fresh_staff(world.hospital_a), role="other"
                ).pk
        response = api.delete(base + f"care-team/{member}/", token=token)
    elif endpoint == "get_notes":
        response = api.get(base + "notes/", token=token)
    else:
        response = api.post(base + "notes/", json={"body": f"Seen by {role}."}, token=token)

    assert response.status_code == expected, (role, endpoint, target, response.status_code, response.text)

    if expected >= 400:
        assert_json_error(response, expected)
        # Nothing of the probed record leaks into a refusal.
        for key in ("P1", "P2", "B", "B_guessed"):
            assert world.mrns[key] not in response.text
    elif endpoint in ("get_patient", "patch_patient"):
        assert (
            response.json()["id"] == patient and response.json()["mrn"] == world.mrns["P1" if target == "own" else "P2"]
        )
    elif endpoint == "get_care_team":
        assert all({"id", "staff", "staff_name", "staff_role", "role"} <= set(m) for m in response.json())
    elif endpoint == "get_notes":
        assert "results" in response.json()

    # The write happened exactly when it was allowed, and nowhere else.
    with tenant_context(hospital):
        notes_after = ClinicalNote.objects.filter(patient_id=patient).count()
        phone_after = Patient.objects.filter(pk=patient).values_list("phone", flat=True).first()
        if endpoint == "post_care_team":
            assert CareTeamMembership.objects.filter(patient_id=patient, staff=newcomer).exists() == (expected == 201)
    assert notes_after == notes_before + (1 if endpoint == "post_notes" and expected == 201 else 0)
    if endpoint == "patch_patient":
        assert phone_after == (phone if expected == 200 else phone_before)
    if endpoint == "delete_care_team":
        assert membership_exists(hospital if target != "b_guessed_id" else world.hospital_b, member) == (
            expected != 204
        )


EXPECTED_PERMISSIONS_ON_P1 = {
    "admin": [CHANGE, NOTE, CLINICAL, VIEW],
    "doctor_team": [CHANGE, NOTE, CLINICAL, VIEW],
    "nurse_team": [NOTE, CLINICAL, VIEW],
    "head": [CLINICAL, VIEW],
    "rec_registrar": [VIEW],
}


@pytest.mark.parametrize("role", sorted(EXPECTED_PERMISSIONS_ON_P1))
def test_patient_detail_lists_the_callers_permissions(world, role):
    response = world.actors[role].api.get(f"/api/patients/{world.patients['P1']}/")
    assert response.status_code == 200, response.text
    assert response.json()["permissions"] == sorted(EXPECTED_PERMISSIONS_ON_P1[role])


def test_no_credentials_is_401_everywhere(world):
    anonymous = Api(world.server_url, hospital_host(world.hospital_a.slug))
    p1 = world.patients["P1"]
    for method, path in [
        ("GET", "/api/patients/"),
        ("POST", "/api/patients/"),
        ("GET", f"/api/patients/{p1}/"),
        ("PATCH", f"/api/patients/{p1}/"),
        ("GET", f"/api/patients/{p1}/care-team/"),
        ("POST", f"/api/patients/{p1}/care-team/"),
        ("DELETE", f"/api/patients/{p1}/care-team/1/"),
        ("GET", f"/api/patients/{p1}/notes/"),
        ("POST", f"/api/patients/{p1}/notes/"),
        ("GET", "/api/departments/"),
        ("GET", "/api/staff/"),
        ("GET", "/api/invitations/"),
        ("GET", "/api/me/permissions/"),
    ]:
        response = anonymous.request(method, path, json={})
        assert_json_error(response, 401, "not_authenticated")


@pytest.mark.parametrize("path", ["/api/patients/", "/api/departments/", "/api/staff/", "/api/invitations/"])
def test_accounts_without_an_active_role_get_403_on_workspace_lists(world, path):
    assert_json_error(world.actors["no_role"].api.get(path), 403)
    # A deactivated staff member is no staff member.
    inactive = actor(world.server_url, world.hospital_a, "inactive", DOCTOR)
    assert inactive.api.get("/api/patients/").status_code == 200
    assert (
        world.actors["admin"].api.patch(f"/api/staff/{inactive.staff.pk}/", json={"is_active": False}).status_code
        == 200
    )
    # Deactivation ends their sessions at once (tests/test_sessions.py); logged in again, the account is no staff.
    assert_json_error(inactive.api.get(path), 401, "token_not_valid")
    inactive.api.login(inactive.user.email)
    assert_json_error(inactive.api.get(path), 403)


@pytest.mark.parametrize(
    "role, status", [("admin", 201), ("doctor_team", 403), ("nurse_team", 403), ("head", 403), ("no_role", 403)]
)
def test_only_admins_and_receptionists_register_patients(world, role, status):
    # (Receptionists: test_a_receptionist_sees_... below, with a fresh one, so the world's lists stay put.)
    body = patient_body()
    response = world.actors[role].api.post("/api/patients/", json=body)
    assert response.status_code == status, response.text
    with tenant_context(world.hospital_a):
        assert Patient.objects.filter(mrn=body["mrn"]).exists() == (status == 201)


def test_a_receptionist_sees_the_demographics_of_whom_they_registered_only(world):
    receptionist = actor(world.server_url, world.hospital_a, "front-desk", RECEPTIONIST)
    assert ids_of(receptionist.api.get("/api/patients/?page_size=100")) == set()
    patient = created(receptionist.api.post("/api/patients/", json=patient_body()))["id"]
    detail = receptionist.api.get(f"/api/patients/{patient}/")
    assert detail.status_code == 200 and detail.json()["permissions"] == [VIEW]
    assert ids_of(receptionist.api.get("/api/patients/?page_size=100")) == {patient}
    assert_json_error(receptionist.api.get(f"/api/patients/{patient}/notes/"), 403)
    assert_json_error(receptionist.api.get(f"/api/patients/{patient}/care-team/"), 403)
    assert_json_error(receptionist.api.post(f"/api/patients/{patient}/notes/", json={"body": "x"}), 403)
    assert_json_error(receptionist.api.patch(f"/api/patients/{patient}/", json={"phone": "1"}), 403)


# 2. Lists hold exactly the permitted rows; search and department filter stay inside them.

VISIBLE = {
    "doctor_team": {"P1"},
    "nurse_team": {"P1"},
    "head": {"P1", "P4"},
    "rec_registrar": {"P1"},
    "rec_other": {"P3"},
    "doctor_other": {"P3"},
    "nurse_other": set(),
}
WORLD_PATIENTS = {"P1", "P2", "P3", "P4"}


def visible_ids(world, role) -> set[int]:
    """What `role` may list: for admins every patient of hospital A (other tests add some), else VISIBLE."""
    if role == "admin":
        return hospital_patient_ids(world.hospital_a)
    return {world.patients[key] for key in VISIBLE[role]}


def world_ids(world, keys) -> set[int]:
    return {world.patients[key] for key in keys}


@pytest.mark.parametrize("role", ROLES)
def test_patient_list_holds_exactly_the_permitted_patients(world, role):
    api = world.actors[role].api
    if role == "no_role":
        assert_json_error(api.get("/api/patients/?page_size=100"), 403)
        return
    listed = all_listed_ids(api) if role == "admin" else ids_of(api.get("/api/patients/?page_size=100"))
    assert listed == visible_ids(world, role)
    assert world.patients["B_guessed"] not in listed


@pytest.mark.parametrize("role", [r for r in ROLES if r != "no_role"])
def test_search_and_department_filter_stay_within_the_permitted_patients(world, role):
    api = world.actors[role].api
    mine = visible_ids(world, role)

    def listed(query):
        return ids_of(api.get(f"/api/patients/?page_size=100&{query}"))

    # By name: a shared part, one full name (case-insensitive, every term must match), a first name.
    assert listed(f"search={MARK}") == mine & world_ids(world, WORLD_PATIENTS)
    assert listed(f"search={MARK.upper()}") == mine & world_ids(world, WORLD_PATIENTS)
    first, last = world.names["P2"]
    assert listed(f"search={first.lower()}+{last}") == mine & world_ids(world, {"P2"})
    assert listed(f"search=Ashford{MARK}+Brook{MARK}") == set()
    # By MRN (whole, any case); another hospital's MRN finds nothing here.
    assert listed(f"search={world.mrns['P1']}") == mine & world_ids(world, {"P1"})
    assert listed(f"search={world.mrns['P4'].lower()}") == mine & world_ids(world, {"P4"})
    assert listed(f"search={world.mrns['B_guessed']}") == set()
    assert listed(f"search=%20%20{world.mrns['P3']}%20") == mine & world_ids(world, {"P3"})
    # By department, alone and with a search.
    assert listed(f"department={world.departments['D1']}") == mine & world_ids(world, {"P1", "P4"})
    assert listed(f"department={world.departments['D2']}") == mine & world_ids(world, {"P2"})
    assert listed(f"department={world.departments['D1']}&search=Dale{MARK}") == mine & world_ids(world, {"P4"})
    assert listed(f"department={world.departments['D2']}&search=Dale{MARK}") == set()
    assert listed("department=987654321") == set()


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "1e3", "%20"])
def test_a_bad_department_filter_is_a_json_400(world, value):
    body = assert_json_error(world.actors["admin"].api.get(f"/api/patients/?department={value}"), 400, "invalid")
    assert "department" in body["fields"]


def test_a_unicode_digit_department_filter_is_a_json_400(world):
    response = world.actors["admin"].api.get("/api/patients/?department=%C2%B2")  # "²"
    assert_json_error(response, 400)


def test_a_nul_character_in_search_is_not_a_500(world):
    response = world.actors["admin"].api.get("/api/patients/?search=a%00b")
    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=0",
        "page=-1",
        "page=99999",
        "page_size=abc",
        "page_size=0",
        "page_size=-5",
        "page_size=100000",
        "search=",
        "search=%25%5F%5C",
        "search=%27%22",
        f"search={'x' * 5000}",
        "department=",
        "department=99999999999999999999999",
        "ordering=-mrn",
        "search=a&search=b",
        "department=1&department=abc",
    ],
)
@pytest.mark.parametrize("path", ["/api/patients/", "/api/patients/{P1}/notes/"])
def test_odd_query_parameters_are_never_a_500(world, path, query):
    for role in ("admin", "doctor_team"):
        response = world.actors[role].api.get(path.format(P1=world.patients["P1"]) + "?" + query)
        assert response.status_code in (200, 400, 404), (role, query, response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/json")


# 3. Granting and revoking take effect on the very next request.


def test_care_team_grant_revoke_and_role_change_take_effect_on_the_next_request(world):
    admin = world.actors["admin"].api
    doctor = actor(world.server_url, world.hospital_a, "grant-doctor", DOCTOR)
    patient = created(admin.post("/api/patients/", json=patient_body()))["id"]
    url = f"/api/patients/{patient}/"
    assert doctor.api.get(url).status_code == 404
    assert ids_of(doctor.api.get("/api/patients/?page_size=100")) == set()

    member = created(admin.post(url + "care-team/", json={"staff": doctor.staff.pk, "role": "attending"}))["id"]
    detail = doctor.api.get(url)
    assert detail.status_code == 200
    assert detail.json()["permissions"] == sorted([VIEW, CHANGE, CLINICAL, NOTE])
    assert ids_of(doctor.api.get("/api/patients/?page_size=100")) == {patient}
    assert doctor.api.patch(url, json={"phone": "111"}).status_code == 200
    assert [m["staff"] for m in doctor.api.get(url + "care-team/").json()] == [doctor.staff.pk]

    # A second team patient: a role change applies to every team the member is on.
    second = created(admin.post("/api/patients/", json=patient_body()))["id"]
    created(admin.post(f"/api/patients/{second}/care-team/", json={"staff": doctor.staff.pk, "role": "consultant"}))
    assert doctor.api.patch(f"/api/patients/{second}/", json={"phone": "111"}).status_code == 200

    # doctor -> nurse: no more change_patient on their team's patients, the rest stays.
    response = admin.patch(f"/api/staff/{doctor.staff.pk}/", json={"role": "nurse"})
    assert response.status_code == 200 and response.json()["role"] == "nurse"
    for team_url in (url, f"/api/patients/{second}/"):
        assert doctor.api.get(team_url).json()["permissions"] == sorted([VIEW, CLINICAL, NOTE])
        assert_json_error(doctor.api.patch(team_url, json={"phone": "222"}), 403)
    assert ids_of(doctor.api.get("/api/patients/?page_size=100")) == {patient, second}
    assert doctor.api.post(url + "notes/", json={"body": "Nurse's note."}).status_code == 201
    assert doctor.api.get("/api/me/permissions/").json()["role"] == "nurse"
    # ... and back.
    assert admin.patch(f"/api/staff/{doctor.staff.pk}/", json={"role": "doctor"}).status_code == 200
    assert doctor.api.get(url).json()["permissions"] == sorted([VIEW, CHANGE, CLINICAL, NOTE])
    assert doctor.api.patch(url, json={"phone": "333"}).status_code == 200

    # Revoked: a 404 again, at once, on the detail, the clinical record and the list.
    assert admin.delete(url + f"care-team/{member}/").status_code == 204
    assert_json_error(doctor.api.get(url), 404)
    assert_json_error(doctor.api.get(url + "notes/"), 404)
    assert_json_error(doctor.api.patch(url, json={"phone": "444"}), 404)
    assert ids_of(doctor.api.get("/api/patients/?page_size=100")) == {second}
    assert admin.get(url).json()["phone"] == "333"
    # Granting again works (the old membership is gone, not just hidden).
    created(admin.post(url + "care-team/", json={"staff": doctor.staff.pk, "role": "consultant"}))
    assert doctor.api.get(url).status_code == 200


def test_deactivating_a_care_team_member_shuts_them_out_at_once(world):
    admin = world.actors["admin"].api
    nurse = actor(world.server_url, world.hospital_a, "deactivated-nurse", NURSE)
    patient = created(admin.post("/api/patients/", json=patient_body()))["id"]
    created(admin.post(f"/api/patients/{patient}/care-team/", json={"staff": nurse.staff.pk, "role": "nurse"}))
    assert nurse.api.get(f"/api/patients/{patient}/").status_code == 200
    assert admin.patch(f"/api/staff/{nurse.staff.pk}/", json={"is_active": False}).status_code == 200
    assert_json_error(nurse.api.get(f"/api/patients/{patient}/"), 401, "token_not_valid")  # logged out
    nurse.api.login(nurse.user.email)  # the account itself is active: it may log in, and is no staff
    assert_json_error(nurse.api.get(f"/api/patients/{patient}/"), 403)
    assert_json_error(nurse.api.get("/api/patients/"), 403)
    # An inactive staff member can't be put on a team either.
    other = created(admin.post("/api/patients/", json=patient_body()))["id"]
    assert_json_error(admin.post(f"/api/patients/{other}/care-team/", json={"staff": nurse.staff.pk}), 400)
    assert admin.patch(f"/api/staff/{nurse.staff.pk}/", json={"is_active": True}).status_code == 200
    assert nurse.api.get(f"/api/patients/{patient}/").status_code == 200


def test_a_receptionist_promoted_to_nurse_no_longer_sees_whom_they_registered(world):
    admin = world.actors["admin"].api
    receptionist = actor(world.server_url, world.hospital_a, "promoted", RECEPTIONIST)
    patient = created(receptionist.api.post("/api/patients/", json=patient_body()))["id"]
    assert receptionist.api.get(f"/api/patients/{patient}/").status_code == 200
    assert admin.patch(f"/api/staff/{receptionist.staff.pk}/", json={"role": "nurse"}).status_code == 200
    # Now a nurse on no care team: nothing.
    assert_json_error(receptionist.api.get(f"/api/patients/{patient}/"), 404)
    assert ids_of(receptionist.api.get("/api/patients/?page_size=100")) == set()


# 4. Department heads.


def test_department_head_is_granted_and_revoked_with_the_head_field(world):
    admin = world.actors["admin"].api
    first = actor(world.server_url, world.hospital_a, "head-one", DOCTOR)
    second = actor(world.server_url, world.hospital_a, "head-two", DOCTOR)
    department = created(
        admin.post("/api/departments/", json={"name": "Neurology", "code": f"neuro-{uuid.uuid4().hex[:8]}"})
    )["id"]
    patient = created(admin.post("/api/patients/", json=patient_body(department=department)))["id"]
    elsewhere = created(admin.post("/api/patients/", json=patient_body()))["id"]
    url = f"/api/patients/{patient}/"
    assert first.api.get(url).status_code == 404

    response = admin.patch(f"/api/departments/{department}/", json={"head": first.staff.pk})
    assert response.status_code == 200 and response.json()["head"] == first.staff.pk
    assert first.api.get(url).json()["permissions"] == sorted([VIEW, CLINICAL])
    assert first.api.get(url + "notes/").status_code == 200
    assert first.api.get(url + "care-team/").status_code == 200
    assert ids_of(first.api.get("/api/patients/?page_size=100")) == {patient}
    assert ids_of(first.api.get(f"/api/patients/?page_size=100&department={department}")) == {patient}
    # Read-only.
    assert_json_error(first.api.patch(url, json={"phone": "1"}), 403)
    assert_json_error(first.api.post(url + "notes/", json={"body": "x"}), 403)
    assert_json_error(first.api.get(f"/api/patients/{elsewhere}/"), 404)

    # A new head: the old one loses the department's patients at once.
    assert admin.patch(f"/api/departments/{department}/", json={"head": second.staff.pk}).status_code == 200
    assert_json_error(first.api.get(url), 404)
    assert ids_of(first.api.get("/api/patients/?page_size=100")) == set()
    assert second.api.get(url).json()["permissions"] == sorted([VIEW, CLINICAL])
    assert ids_of(second.api.get("/api/patients/?page_size=100")) == {patient}

    # A patient moved out of the department leaves the head's view; moved back, returns.
    assert admin.patch(url, json={"department": None}).status_code == 200
    assert_json_error(second.api.get(url), 404)
    assert admin.patch(url, json={"department": department}).status_code == 200
    assert second.api.get(url).status_code == 200

    # No head at all.
    assert admin.patch(f"/api/departments/{department}/", json={"head": None}).status_code == 200
    assert_json_error(second.api.get(url), 404)
    assert ids_of(second.api.get("/api/patients/?page_size=100")) == set()


def test_only_admins_change_departments_and_staff(world):
    department = world.departments["D1"]
    for role in ("doctor_team", "head", "rec_registrar", "nurse_team"):
        api = world.actors[role].api
        assert api.get(f"/api/departments/{department}/").status_code == 200
        assert_json_error(api.patch(f"/api/departments/{department}/", json={"head": world.actors[role].staff.pk}), 403)
        assert_json_error(api.patch(f"/api/staff/{world.actors[role].staff.pk}/", json={"role": ADMIN}), 403)
        assert_json_error(api.post("/api/departments/", json={"name": "X", "code": f"x-{uuid.uuid4().hex[:6]}"}), 403)
    response = world.actors["admin"].api.get(f"/api/departments/{department}/")
    assert response.json()["head"] == world.actors["head"].staff.pk


# 5. Nothing of hospital A is reachable from hospital B.


def test_hospital_b_admin_probing_ids_only_ever_sees_hospital_b(world):
    b = world.b_admin.api
    a_ids, b_ids = hospital_patient_ids(world.hospital_a), hospital_patient_ids(world.hospital_b)
    with tenant_context(world.hospital_a):
        a_mrns = set(Patient.objects.values_list("mrn", flat=True))
    with tenant_context(world.hospital_b):
        b_mrn_of = dict(Patient.objects.values_list("pk", "mrn"))
    assert a_ids & b_ids, "the probe is only meaningful if the two hospitals share ids"
    for pk in range(1, max(a_ids) + 5):
        response = b.get(f"/api/patients/{pk}/")
        if pk in b_ids:
            assert response.status_code == 200, (pk, response.text)
            assert response.json()["mrn"] == b_mrn_of[pk]
        else:
            assert_json_error(response, 404, "not_found")
        for mrn in a_mrns:
            assert mrn not in response.text
        notes = b.get(f"/api/patients/{pk}/notes/")
        assert notes.status_code == (200 if pk in b_ids else 404), (pk, notes.text)
    listed = all_listed_ids(b)
    assert listed == hospital_patient_ids(world.hospital_b)
    assert not {p["mrn"] for p in b.get("/api/patients/?page_size=100").json()["results"]} & a_mrns
    for mrn_key in ("P1", "P2", "P3", "P4"):
        assert ids_of(b.get(f"/api/patients/?page_size=100&search={world.mrns[mrn_key]}")) == set()
    # B's staff list is B's own people.
    emails_b = {s["email"] for s in b.get("/api/staff/?page_size=100").json()["results"]}
    assert not emails_b & {a.user.email for a in world.actors.values()}


def test_a_tokens_are_401_on_b_and_b_tokens_on_a(world):
    b_host = world.api_b()
    a_host = Api(world.server_url, hospital_host(world.hospital_a.slug))
    p1 = world.patients["P1"]
    for role in ("admin", "doctor_team", "no_role"):
        token = world.actors[role].token
        for path in (
            "/api/patients/",
            f"/api/patients/{p1}/",
            f"/api/patients/{p1}/notes/",
            "/api/me/permissions/",
            "/api/staff/",
            "/api/departments/",
        ):
            assert_json_error(b_host.get(path, token=token), 401, "token_not_valid")
        assert_json_error(b_host.post("/api/patients/", json=patient_body(), token=token), 401)
    for path in ("/api/patients/", f"/api/patients/{world.patients['B_guessed']}/", "/api/me/permissions/"):
        assert_json_error(a_host.get(path, token=world.b_admin.token), 401, "token_not_valid")


def test_care_team_cannot_take_a_staff_member_of_another_hospital(world):
    admin = world.actors["admin"].api
    patient = created(admin.post("/api/patients/", json=patient_body()))["id"]
    # A staff id that exists in B only (B's own sequence gives overlapping small ids, which are A's rows in A).
    with tenant_context(world.hospital_a):
        a_staff = set(StaffMember.objects.values_list("pk", flat=True))
    with tenant_context(world.hospital_b):
        b_only = max(set(StaffMember.objects.values_list("pk", flat=True)) - a_staff, default=None)
    for _ in range(1000):
        if b_only is not None:
            break
        candidate = fresh_staff(world.hospital_b)
        b_only = candidate.pk if candidate.pk not in a_staff else None
    assert b_only is not None
    body = assert_json_error(admin.post(f"/api/patients/{patient}/care-team/", json={"staff": b_only}), 400)
    assert "staff" in body["fields"]
    with tenant_context(world.hospital_a):
        assert not CareTeamMembership.objects.filter(patient_id=patient).exists()


# 6. Bad input: a JSON 4xx with the offending field named, never a 500.


def test_unknown_ids_are_json_404(world):
    admin = world.actors["admin"].api
    p1 = world.patients["P1"]
    for method, path in [
        ("GET", "/api/patients/987654321/"),
        ("PATCH", "/api/patients/987654321/"),
        ("GET", "/api/patients/99999999999999999999999/"),
        ("GET", "/api/patients/987654321/notes/"),
        ("POST", "/api/patients/987654321/notes/"),
        ("GET", "/api/patients/987654321/care-team/"),
        ("DELETE", f"/api/patients/{p1}/care-team/987654321/"),
        ("DELETE", f"/api/patients/{p1}/care-team/99999999999999999999999/"),
        ("GET", "/api/staff/987654321/"),
        ("GET", "/api/departments/987654321/"),
        ("GET", "/api/patients/abc/"),
        ("GET", "/api/patients/-1/"),
    ]:
        assert_json_error(admin.request(method, path, json={"body": "x"}), 404)


def test_removing_a_membership_of_another_patient_is_a_404(world):
    admin = world.actors["admin"].api
    with tenant_context(world.hospital_a):
        membership = CareTeamMembership.objects.get(
            patient_id=world.patients["P1"], staff=world.actors["doctor_team"].staff
        )
    assert_json_error(admin.delete(f"/api/patients/{world.patients['P2']}/care-team/{membership.pk}/"), 404)
    assert membership_exists(world.hospital_a, membership.pk)


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/api/patients/"),
        ("PATCH", "/api/patients/{P1}/"),
        ("PUT", "/api/patients/{P1}/"),
        ("POST", "/api/patients/{P1}/care-team/"),
        ("POST", "/api/patients/{P1}/notes/"),
        ("PATCH", "/api/departments/{D1}/"),
        ("PATCH", "/api/staff/{staff}/"),
        ("POST", "/api/departments/"),
    ],
)
@pytest.mark.parametrize("body", [b'{"mrn": "x", ', b"[]", b"null", b'"text"', b"42", b"{}"])
def test_malformed_or_non_object_json_is_a_json_4xx(world, method, path, body):
    admin = world.actors["admin"]
    path = path.format(P1=world.patients["P1"], D1=world.departments["D1"], staff=world.actors["nurse_other"].staff.pk)
    before = world_snapshot(world)
    response = admin.api.request(method, path, data=body, headers={"Content-Type": "application/json"})
    if body == b"{}" and method == "PATCH":
        assert response.status_code == 200, response.text  # an empty partial update changes nothing
    else:
        assert_json_error(response, 400, "parse_error" if body.endswith(b", ") else None)
    assert world_snapshot(world) == before


def world_snapshot(world) -> tuple:
    with tenant_context(world.hospital_a):
        return (
            list(
                Patient.objects.filter(pk__in=world_ids(world, WORLD_PATIENTS))
                .order_by("pk")
                .values_list("pk", "mrn", "first_name", "last_name", "phone", "department_id")
            ),
            Patient.objects.count(),
            list(CareTeamMembership.objects.filter(patient_id=world.patients["P1"]).values_list("pk", "staff_id")),
            ClinicalNote.objects.count(),
            list(StaffMember.objects.order_by("pk").values_list("pk", "role", "department_id", "is_active")),
            list(Department.objects.order_by("pk").values_list("pk", "name", "code", "head_id")),
        )


@pytest.mark.parametrize(
    "field, value",
    [
        ("date_of_birth", "2020-02-30"),
        ("date_of_birth", "yesterday"),
        ("date_of_birth", "1980-01-02T10:00"),
        ("date_of_birth", None),
        ("sex", "alien"),
        ("sex", ""),
        ("sex", None),
        ("mrn", ""),
        ("mrn", "x" * 33),
        ("first_name", ""),
        ("email", "not-an-email"),
        ("department", 987654321),
        ("department", "abc"),
        ("mrn", "nul\u0000byte"),
    ],
)
def test_invalid_patient_fields_are_a_400_naming_the_field(world, field, value):
    admin = world.actors["admin"].api
    body = patient_body(**{field: value})
    response = admin.post("/api/patients/", json=body)
    assert field in assert_json_error(response, 400, "invalid")["fields"]
    if field != "mrn":
        with tenant_context(world.hospital_a):
            assert not Patient.objects.filter(mrn=body["mrn"]).exists()
    response = admin.patch(f"/api/patients/{world.patients['P2']}/", json={field: value})
    assert field in assert_json_error(response, 400, "invalid")["fields"]


def test_duplicate_mrn_is_a_400(world):
    admin = world.actors["admin"].api
    body = assert_json_error(admin.post("/api/patients/", json=patient_body(mrn=world.mrns["P1"])), 400, "invalid")
    assert "mrn" in body["fields"]
    body = assert_json_error(admin.patch(f"/api/patients/{world.patients['P2']}/", json={"mrn": world.mrns["P1"]}), 400)
    assert "mrn" in body["fields"]
    # A patient keeps its own MRN on a full update.
    current = admin.get(f"/api/patients/{world.patients['P4']}/").json()
    put = {
        k: current[k]
        for k in ("mrn", "first_name", "last_name", "date_of_birth", "sex", "phone", "email", "address", "department")
    }
    assert admin.put(f"/api/patients/{world.patients['P4']}/", json=put).status_code == 200
    # An MRN of hospital B is free in hospital A: each hospital numbers its own records.
    created(admin.post("/api/patients/", json=patient_body(mrn=world.mrns["B_guessed"] + "-a")))


def test_bad_care_team_requests_are_a_400(world):
    admin = world.actors["admin"].api
    url = f"/api/patients/{world.patients['P1']}/care-team/"
    for payload, field in [
        ({}, "staff"),
        ({"staff": "abc"}, "staff"),
        ({"staff": 987654321}, "staff"),
        ({"staff": 99999999999999999999999}, "staff"),
        ({"staff": fresh_staff(world.hospital_a).pk, "role": "boss"}, "role"),
        ({"staff": world.actors["doctor_team"].staff.pk}, "staff"),
    ]:  # already on the team
        body = assert_json_error(admin.post(url, json=payload), 400)
        assert field in body.get("fields", {}), (payload, body)


def test_bad_note_requests(world):
    admin, doctor = world.actors["admin"].api, world.actors["doctor_team"].api
    p1, p2 = world.patients["P1"], world.patients["P2"]
    note_on_p2 = created(admin.post(f"/api/patients/{p2}/notes/", json={"body": "P2's note."}))["id"]
    note_on_p1 = created(doctor.post(f"/api/patients/{p1}/notes/", json={"body": "P1's note."}))["id"]
    for payload, field in [
        ({}, "body"),
        ({"body": ""}, "body"),
        ({"body": "   \n "}, "body"),
        ({"body": None}, "body"),
        ({"body": "ok", "corrects": note_on_p2}, "corrects"),
        ({"body": "ok", "corrects": 987654321}, "corrects"),
        ({"body": "ok", "corrects": 99999999999999999999999}, "corrects"),
        ({"body": "ok", "corrects": "abc"}, "corrects"),
        ({"body": "nul\u0000"}, "body"),
    ]:
        body = assert_json_error(doctor.post(f"/api/patients/{p1}/notes/", json=payload), 400)
        assert field in body.get("fields", {}), (payload, body)
    # A note on a patient one can't view: 404, whatever the body.
    assert_json_error(doctor.post(f"/api/patients/{p2}/notes/", json={"body": "x"}), 404)
    assert_json_error(doctor.post(f"/api/patients/{p2}/notes/", json={"body": "x", "corrects": note_on_p2}), 404)
    # Notes can't be changed: no method for it on the list URL, and no note URL at all.
    for method in ("PATCH", "PUT", "DELETE"):
        assert_json_error(doctor.request(method, f"/api/patients/{p1}/notes/", json={"body": "edited"}), 405)
        assert_json_error(admin.request(method, f"/api/patients/{p1}/notes/{note_on_p1}/", json={"body": "e"}), 404)
    with tenant_context(world.hospital_a):
        assert ClinicalNote.objects.get(pk=note_on_p1).body == "P1's note."
        assert ClinicalNote.objects.filter(patient_id=p1, body="ok").count() == 0


# 7. Notes are never edited: corrections are new notes.


def test_a_correction_is_a_new_note_and_both_are_listed_oldest_first(world):
    admin = world.actors["admin"].api
    doctor = actor(world.server_url, world.hospital_a, "note-doctor", DOCTOR, first_name="Nora", last_name="Notes")
    nurse = actor(world.server_url, world.hospital_a, "note-nurse", NURSE)
    patient = created(admin.post("/api/patients/", json=patient_body()))["id"]
    for who, role in ((doctor, "attending"), (nurse, "nurse")):
        created(admin.post(f"/api/patients/{patient}/care-team/", json={"staff": who.staff.pk, "role": role}))
    url = f"/api/patients/{patient}/notes/"

    first = created(doctor.api.post(url, json={"body": "BP 120/80."}))
    assert first["author"] == doctor.staff.pk and first["author_name"] == "Nora Notes" and first["corrects"] is None
    second = created(nurse.api.post(url, json={"body": "Pulse 70."}))
    # The author is the caller, whatever the body says.
    third = created(
        doctor.api.post(url, json={"body": "Correction: BP 130/80.", "corrects": first["id"], "author": nurse.staff.pk})
    )
    assert third["corrects"] == first["id"] and third["author"] == doctor.staff.pk
    # A nurse on the team may correct too, and a correction may be corrected.
    fourth = created(nurse.api.post(url, json={"body": "Correction of the correction.", "corrects": third["id"]}))

    for api in (doctor.api, nurse.api, admin):
        listed = api.get(url).json()
        assert listed["count"] == 4
        assert [n["id"] for n in listed["results"]] == [first["id"], second["id"], third["id"], fourth["id"]]
        assert [n["corrects"] for n in listed["results"]] == [None, None, first["id"], third["id"]]
        assert listed["results"][0]["body"] == "BP 120/80."
    # Paginated, oldest first.
    page = doctor.api.get(url + "?page_size=2&page=2").json()
    assert [n["id"] for n in page["results"]] == [third["id"], fourth["id"]]
    # The stored note is untouched, and the model refuses to edit it.
    with tenant_context(world.hospital_a):
        note = ClinicalNote.objects.get(pk=first["id"])
        assert note.body == "BP 120/80."
        note.body = "edited"
        with pytest.raises(ValueError):
            note.save()
        assert ClinicalNote.objects.get(pk=first["id"]).body == "BP 120/80."


# 8. /api/me/permissions/ per role.

NO_CAN = {
    "list_patients": False,
    "create_patients": False,
    "manage_care_teams": False,
    "manage_departments": False,
    "manage_staff": False,
    "invite_staff": False,
}


@pytest.mark.parametrize(
    "role, expected_role, admin, can",
    [
        ("admin", "hospital_admin", True, dict.fromkeys(NO_CAN, True)),
        ("doctor_team", "doctor", False, {**NO_CAN, "list_patients": True}),
        ("nurse_team", "nurse", False, {**NO_CAN, "list_patients": True}),
        ("head", "doctor", False, {**NO_CAN, "list_patients": True}),
        ("rec_registrar", "receptionist", False, {**NO_CAN, "list_patients": True, "create_patients": True}),
        ("rec_other", "receptionist", False, {**NO_CAN, "list_patients": True, "create_patients": True}),
        ("doctor_other", "doctor", False, {**NO_CAN, "list_patients": True}),
        ("nurse_other", "nurse", False, {**NO_CAN, "list_patients": True}),
        ("no_role", None, False, NO_CAN),
    ],
)
def test_my_permissions(world, role, expected_role, admin, can):
    response = world.actors[role].api.get("/api/me/permissions/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["role"] == expected_role
    assert body["is_hospital_admin"] is admin
    assert body["can"] == can
    assert body["department"] == (world.departments["D1"] if role == "head" else None)
    # The same answer with the Bearer token instead of the cookie.
    bearer = Api(world.server_url, hospital_host(world.hospital_a.slug))
    assert bearer.get("/api/me/permissions/", token=world.actors[role].token).json() == body


# Each action /api/me/permissions/ reports, and a request its endpoint answers 200 or, with its empty body,
# 400 when permitted (nothing is created), and 403 when refused (404 where the patient is hidden from the caller).
CAN_PROBES = {
    "list_patients": ("GET", "/api/patients/"),
    "create_patients": ("POST", "/api/patients/"),
    "manage_care_teams": ("POST", "/api/patients/{P1}/care-team/"),
    "manage_departments": ("POST", "/api/departments/"),
    "manage_staff": ("POST", "/api/staff/"),
    "invite_staff": ("POST", "/api/invitations/"),
}


@pytest.mark.parametrize("role", ["admin", "doctor_team", "head", "rec_registrar", "nurse_other", "no_role"])
def test_my_permissions_say_what_the_endpoints_enforce(world, role):
    api = world.actors[role].api
    can = api.get("/api/me/permissions/").json()["can"]
    assert set(can) == set(CAN_PROBES)
    for action, (method, path) in CAN_PROBES.items():
        response = api.request(method, path.format(P1=world.patients["P1"]), json={} if method == "POST" else None)
        assert (response.status_code in (200, 400)) is can[action], (action, response.status_code, response.text)
        assert response.status_code in (200, 400, 403, 404), (action, response.status_code, response.text)


def test_my_permissions_follow_a_role_change_and_deactivation(world):
    admin = world.actors["admin"].api
    member = actor(world.server_url, world.hospital_a, "changing", RECEPTIONIST)
    assert member.api.get("/api/me/permissions/").json()["can"]["create_patients"] is True
    assert admin.patch(f"/api/staff/{member.staff.pk}/", json={"role": ADMIN}).status_code == 200
    body = member.api.get("/api/me/permissions/").json()
    assert body["role"] == ADMIN and body["is_hospital_admin"] is True and body["can"]["manage_care_teams"] is True
    assert admin.patch(f"/api/staff/{member.staff.pk}/", json={"is_active": False}).status_code == 200
    assert member.api.get("/api/me/permissions/").status_code == 401  # deactivation ended the session
    member.api.login(member.user.email)
    body = member.api.get("/api/me/permissions/").json()
    assert body["role"] is None and body["can"] == NO_CAN


def test_receptionists_join_no_care_team(world):
    """Receptionists see demographics only: they cannot be put on a care team, nor become one while on one."""
    admin = world.actors["admin"].api
    receptionist = fresh_staff(world.hospital_a, StaffMember.Role.RECEPTIONIST)
    response = admin.post(f"/api/patients/{world.patients['P2']}/care-team/", json={"staff": receptionist.pk})
    assert_json_error(response, 400)
    assert response.json()["code"] == "receptionist_not_clinical"
    nurse = fresh_staff(world.hospital_a, StaffMember.Role.NURSE)
    assert admin.post(f"/api/patients/{world.patients['P2']}/care-team/", json={"staff": nurse.pk}).status_code == 201
    response = admin.patch(f"/api/staff/{nurse.pk}/", json={"role": "receptionist"})
    assert_json_error(response, 400)
    assert response.json()["code"] == "on_care_teams"


def test_a_receptionist_heads_no_department(world):
    """A headship opens the department's clinical records: a receptionist is refused as head (issue 11, #3)."""
    admin = world.actors["admin"].api
    receptionist = actor(world.server_url, world.hospital_a, "rec-head", RECEPTIONIST)
    response = admin.post(
        "/api/departments/",
        json={"name": "Front", "code": f"front-{uuid.uuid4().hex[:8]}", "head": receptionist.staff.pk},
    )
    assert assert_json_error(response, 400, "receptionist_not_clinical")["fields"] == {
        "head": [response.json()["detail"]]
    }
    department = created(
        admin.post("/api/departments/", json={"name": "Desk", "code": f"desk-{uuid.uuid4().hex[:8]}"})
    )["id"]
    patient = created(admin.post("/api/patients/", json=patient_body(department=department)))["id"]
    created(admin.post(f"/api/patients/{patient}/notes/", json={"body": "Clinical."}))
    assert_json_error(
        admin.patch(f"/api/departments/{department}/", json={"head": receptionist.staff.pk}),
        400,
        "receptionist_not_clinical",
    )
    assert admin.get(f"/api/departments/{department}/").json()["head"] is None
    assert_json_error(receptionist.api.get(f"/api/patients/{patient}/notes/"), 404)
    assert ids_of(receptionist.api.get("/api/patients/?page_size=100")) == set()


def test_a_department_head_does_not_become_a_receptionist(world):
    """Refused like a care-team member's change, until another head is named; then nothing clinical is left."""
    admin = world.actors["admin"].api
    head = actor(world.server_url, world.hospital_a, "head-to-desk", DOCTOR)
    department = created(
        admin.post(
            "/api/departments/", json={"name": "Renal", "code": f"renal-{uuid.uuid4().hex[:8]}", "head": head.staff.pk}
        )
    )["id"]
    patient = created(admin.post("/api/patients/", json=patient_body(department=department)))["id"]
    notes = f"/api/patients/{patient}/notes/"
    assert head.api.get(notes).status_code == 200

    assert_json_error(
        admin.patch(f"/api/staff/{head.staff.pk}/", json={"role": "receptionist"}), 400, "heads_department"
    )
    assert admin.get(f"/api/staff/{head.staff.pk}/").json()["role"] == DOCTOR
    assert head.api.get(f"/api/patients/{patient}/").json()["permissions"] == sorted([VIEW, CLINICAL])

    other = fresh_staff(world.hospital_a, DOCTOR)
    assert admin.patch(f"/api/departments/{department}/", json={"head": other.pk}).status_code == 200
    assert admin.patch(f"/api/staff/{head.staff.pk}/", json={"role": "receptionist"}).status_code == 200
    assert_json_error(head.api.get(notes), 404)
    assert_json_error(head.api.get(f"/api/patients/{patient}/"), 404)


def test_a_receptionist_keeps_no_clinical_grant_from_an_earlier_role(world, mail_sink):
    """A deactivated head and care-team doctor re-invited as a receptionist.

    Accepting changes the role as any role change does: refused while the account heads a department or sits
    on a care team; once the admin has moved those, the receptionist gets no clinical access (and the role
    caps what any old grant gives).
    """
    admin = world.actors["admin"].api
    doctor = actor(world.server_url, world.hospital_a, "reinvited", DOCTOR)
    department = created(
        admin.post(
            "/api/departments/",
            json={"name": "Burns", "code": f"burns-{uuid.uuid4().hex[:8]}", "head": doctor.staff.pk},
        )
    )["id"]
    in_department = created(admin.post("/api/patients/", json=patient_body(department=department)))["id"]
    on_team = created(admin.post("/api/patients/", json=patient_body()))["id"]
    membership = created(
        admin.post(f"/api/patients/{on_team}/care-team/", json={"staff": doctor.staff.pk, "role": "attending"})
    )["id"]

    doctor.user.is_active = False  # the platform deactivates the account (Django admin)...
    doctor.user.save(update_fields=["is_active"])
    created(admin.post("/api/invitations/", json={"email": doctor.user.email, "role": "receptionist"}))
    mail = mail_sink.wait_for(doctor.user.email)[-1]
    token = link_in(mail, r"/accounts/invitations/accept/([^/\s]+)/").group(1)
    again = Api(world.server_url, hospital_host(world.hospital_a.slug))
    refused = again.post("/accounts/invitations/accept/", json={"token": token, "password": PASSWORD})
    assert refused.status_code == 400 and refused.json()["code"] == "on_care_teams", refused.text
    assert admin.delete(f"/api/patients/{on_team}/care-team/{membership}/").status_code == 204
    refused = again.post("/accounts/invitations/accept/", json={"token": token, "password": PASSWORD})
    assert refused.status_code == 400 and refused.json()["code"] == "heads_department", refused.text
    assert admin.patch(f"/api/departments/{department}/", json={"head": None}).status_code == 200
    assert again.post("/accounts/invitations/accept/", json={"token": token, "password": PASSWORD}).status_code == 200
    assert again.get("/api/me/permissions/").json()["role"] == RECEPTIONIST

    for patient in (in_department, on_team):
        assert again.get(f"/api/patients/{patient}/notes/").status_code in (403, 404)
        assert again.get(f"/api/patients/{patient}/care-team/").status_code in (403, 404)
        detail = again.get(f"/api/patients/{patient}/")
        assert detail.status_code == 404 or CLINICAL not in detail.json()["permissions"], detail.text
    assert in_department not in ids_of(again.get("/api/patients/?page_size=100"))
