"""Break-glass access and a patient's access log over real HTTP: roles, hospitals, exact expiry, the audit
trail, the mail through the outbox and the real worker, the review queue, the log's grants and its CSV export.

The module builds one small world in hospital A (and a nurse and a patient in B) once; tests that open
grants use their own patients, so the order of tests does not matter.
"""

from __future__ import annotations

import csv
import datetime
import io
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from celery import current_app
from django.db.models import F
from django_tenants.utils import tenant_context

from accounts.services import user_create_verified
from audit.models import AuditEvent
from hospitals import access_views, services
from hospitals.models import BreakGlassGrant, Patient
from staff import services as staff_services
from staff.models import StaffMember
from tenants.services import hospital_host
from tests.processes import wait_until
from tests.support import ANSWER_TIMEOUT, PASSWORD, Api, unique_email

REASON = "Patient collapsed in the corridor; care team in theatre, need allergies now."
Role = StaffMember.Role


@dataclass
class Actor:
    user: object
    staff: StaffMember | None
    api: Api
    token: str

    def get(self, path, **kw):
        return self.api.get(path, token=self.token, **kw)

    def post(self, path, **kw):
        return self.api.post(path, token=self.token, **kw)

    def patch(self, path, **kw):
        return self.api.patch(path, token=self.token, **kw)


def actor(server_url, hospital, role: str | None, user_agent: str = "pytest-break-glass") -> Actor:
    user = user_create_verified(
        hospital=hospital, email=unique_email(role or "none"), password=PASSWORD, first_name="T", last_name=role or ""
    )
    staff = None
    if role is not None:
        with tenant_context(hospital):
            staff = staff_services.staff_member_create(user=user, role=role)
    api = Api(server_url, hospital_host(hospital.slug))
    api.session.headers["User-Agent"] = user_agent
    token = api.post("/accounts/login/", json={"email": user.email, "password": PASSWORD, "client": "app"})
    assert token.status_code == 200, token.text
    return Actor(user, staff, api, token.json()["access"])


def new_patient(hospital, *, pk: int | None = None, department=None) -> Patient:
    with tenant_context(hospital):
        admin = StaffMember.objects.filter(role=Role.HOSPITAL_ADMIN).first()
        patient = services.patient_create(
            created_by=admin,
            mrn=f"BG-{uuid.uuid4().hex[:12]}",
            first_name="Glass",
            last_name="Patient",
            date_of_birth="1970-01-01",
            department=department,
        )
        if pk is not None:  # an id hospital B's sequence will not reach
            Patient.objects.filter(pk=patient.pk).update(id=pk)
            patient = Patient.objects.get(pk=pk)
    return patient


@dataclass
class World:
    admin: Actor
    officer: Actor
    nurse: Actor
    doctor: Actor  # on the care team of `patient`
    head: Actor  # heads the department of `patient`
    receptionist: Actor
    no_role: Actor
    nurse_b: Actor
    admin_b: Actor
    patient: Patient
    only_in_a: Patient  # an id that does not exist in hospital B


@pytest.fixture(scope="module")
def world(server_url, hospital_a, hospital_b) -> World:
    a = {role: actor(server_url, hospital_a, role) for role in Role.values}
    head = actor(server_url, hospital_a, Role.DOCTOR)
    with tenant_context(hospital_a):
        department = staff_services.department_create(
            name="Glass ward", code=f"glass-{uuid.uuid4().hex[:8]}", head=head.staff
        )
    patient = new_patient(hospital_a, department=department)
    with tenant_context(hospital_a):
        services.care_team_add(patient=patient, staff=a[Role.DOCTOR].staff, role="attending")
    return World(
        admin=a[Role.HOSPITAL_ADMIN],
        officer=a[Role.PRIVACY_OFFICER],
        nurse=a[Role.NURSE],
        doctor=a[Role.DOCTOR],
        head=head,
        receptionist=a[Role.RECEPTIONIST],
        no_role=actor(server_url, hospital_a, None),
        nurse_b=actor(server_url, hospital_b, Role.NURSE),
        admin_b=actor(server_url, hospital_b, Role.HOSPITAL_ADMIN),
        patient=patient,
        only_in_a=new_patient(hospital_a, pk=random.randrange(10**12, 10**13)),
    )


def expire(hospital, grant_id: int) -> None:
    """The deadline moved into the past in the database: nobody sleeps, no task runs."""
    with tenant_context(hospital):
        shift = datetime.timedelta(hours=3)
        BreakGlassGrant.objects.filter(pk=grant_id).update(
            opened_at=F("opened_at") - shift, expires_at=F("expires_at") - shift
        )


def events(hospital, patient: Patient, action: str) -> list[AuditEvent]:
    with tenant_context(hospital):
        return list(
            AuditEvent.objects.filter(target_type="hospitals.patient", target_id=str(patient.pk), action=action)
        )


def test_break_glass_end_to_end_with_exact_expiry(world, hospital_a, mail_sink):
    nurse, patient = world.nurse, new_patient(hospital_a)
    base = f"/api/patients/{patient.pk}"
    assert nurse.get(f"{base}/").status_code == 404  # off the care team: no record

    opened = nurse.post(f"{base}/break-glass/", json={"reason": REASON})
    assert opened.status_code == 201, opened.text
    grant = opened.json()
    assert grant["patient"] == patient.pk and grant["staff"] == nurse.staff.pk and grant["reason"] == REASON
    assert grant["permissions"] == ["add_note", "view_clinical", "view_patient"] and grant["active"] is True
    opened_at = datetime.datetime.fromisoformat(grant["opened_at"])
    assert datetime.datetime.fromisoformat(grant["expires_at"]) - opened_at == datetime.timedelta(minutes=60)

    detail = nurse.get(f"{base}/")
    assert detail.status_code == 200 and detail.json()["permissions"] == grant["permissions"]
    assert nurse.get(f"{base}/notes/").status_code == 200
    assert nurse.get(f"{base}/care-team/").status_code == 200
    assert nurse.post(f"{base}/notes/", json={"body": "Allergic to penicillin per wallet card."}).status_code == 201
    assert nurse.patch(f"{base}/", json={"phone": "1"}).status_code == 403  # a nurse's grant: no demographics change
    assert patient.pk in {p["id"] for p in nurse.get("/api/patients/?page_size=100").json()["results"]}

    # The opening and every request under it are in the trail, with the reason and the grant.
    with tenant_context(hospital_a):
        trail = list(
            AuditEvent.objects.filter(target_type="hospitals.patient", target_id=str(patient.pk)).order_by("id")
        )
    assert [e.action for e in trail] == [
        "break_glass_opened",
        "patient_viewed",
        "notes_viewed",
        "care_team_viewed",
        "note_added",
    ]
    for event in trail:
        assert event.actor_id == nurse.user.pk and event.ip == "127.0.0.1"
        assert event.detail["via"] == ["break_glass"]
        assert event.detail["break_glass"] == {"id": grant["id"], "reason": REASON}

    # The hospital's admins and privacy officers are mailed by the worker (not the nurse, not B's admin).
    for reader in (world.admin, world.officer):
        mail = next(m for m in mail_sink.wait_for(reader.user.email) if "Emergency access" in m.subject)
        assert nurse.user.name in mail.subject and f"/break-glass/{grant['id']}/" in mail.text
        assert REASON not in mail.text and patient.mrn not in mail.text  # both stay in the review queue
    assert not [m for m in mail_sink.to(world.admin_b.user.email) if "Emergency access" in m.subject]

    expire(hospital_a, grant["id"])
    for path in (f"{base}/", f"{base}/notes/", f"{base}/care-team/"):
        assert nurse.get(path).status_code == 404, path
    assert nurse.post(f"{base}/notes/", json={"body": "late"}).status_code == 404
    assert patient.pk not in {p["id"] for p in nurse.get("/api/patients/?page_size=100").json()["results"]}


@pytest.mark.parametrize("who", ["receptionist", "officer", "admin", "no_role"])
def test_other_roles_cannot_break_glass_and_learn_nothing(world, who):
    caller = getattr(world, who)
    known = caller.post(f"/api/patients/{world.patient.pk}/break-glass/", json={"reason": REASON})
    unknown = caller.post("/api/patients/999999999999999/break-glass/", json={"reason": REASON})
    assert known.status_code == unknown.status_code == 403, (known.text, unknown.text)
    assert known.json() == unknown.json()


def test_bad_input_is_a_clear_4xx(world):
    nurse, path = world.nurse, f"/api/patients/{world.patient.pk}/break-glass/"
    assert nurse.post("/api/patients/999999999999999/break-glass/", json={"reason": REASON}).status_code == 404
    for body in ({}, {"reason": "help"}, {"reason": "\u200b" * 40}, {"reason": "a\x00" * 20}, {"reason": ["x"]}):
        answer = nurse.post(f"/api/patients/{world.only_in_a.pk}/break-glass/", json=body)
        assert answer.status_code == 400 and answer.json()["fields"].get("reason"), (body, answer.text)
    # On the care team already: nothing to break.
    assert world.doctor.post(path, json={"reason": REASON}).json()["code"] == "on_care_team"


def test_hospital_b_can_never_break_glass_into_a(world, hospital_a, hospital_b):
    target = world.only_in_a
    with tenant_context(hospital_b):
        assert not Patient.objects.filter(pk=target.pk).exists()
    # B's nurse at B with A's id: 404 (B has no such patient). B's token at A's host: refused outright.
    assert world.nurse_b.post(f"/api/patients/{target.pk}/break-glass/", json={"reason": REASON}).status_code == 404
    at_a = world.nurse_b.api.post(
        f"/api/patients/{target.pk}/break-glass/",
        token=world.nurse_b.token,
        json={"reason": REASON},
        headers={"Host": hospital_host(hospital_a.slug)},
    )
    assert at_a.status_code == 401
    with tenant_context(hospital_a):
        assert not BreakGlassGrant.objects.filter(staff__user_id=world.nurse_b.user.pk).exists()
    # A's grants are not in B's queue, and B's admin sees no log of A's patient.
    assert world.nurse.post(f"/api/patients/{target.pk}/break-glass/", json={"reason": REASON}).status_code == 201
    b_queue = world.admin_b.get("/api/break-glass/?page_size=100")
    assert b_queue.status_code == 200
    assert world.nurse.user.email not in {g["staff_email"] for g in b_queue.json()["results"]}
    assert world.admin_b.get(f"/api/patients/{target.pk}/access-log/").status_code == 404


def test_a_parallel_burst_opens_one_grant(world, hospital_a):
    patient, doctor = new_patient(hospital_a), actor(world.nurse.api.base_url, hospital_a, Role.DOCTOR)

    def open_once(_):
        return doctor.api.post(
            f"/api/patients/{patient.pk}/break-glass/", token=doctor.token, json={"reason": REASON}
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(open_once, range(8)))
    assert codes == [201] + [409] * 7, codes
    with tenant_context(hospital_a):
        assert BreakGlassGrant.objects.filter(patient=patient).count() == 1


def test_review_queue_and_review(world, hospital_a):
    patient = new_patient(hospital_a)
    grant = world.nurse.post(f"/api/patients/{patient.pk}/break-glass/", json={"reason": REASON}).json()
    query = f"/api/break-glass/?state=open&staff={world.nurse.staff.pk}&patient={patient.pk}"
    for reader in (world.admin, world.officer):
        listed = reader.get(query)
        assert listed.status_code == 200 and [g["id"] for g in listed.json()["results"]] == [grant["id"]]
        assert listed.json()["results"][0]["reason"] == REASON
    for outsider in (world.nurse, world.doctor, world.receptionist, world.no_role):
        assert outsider.get("/api/break-glass/").status_code == 403
        assert (
            outsider.post(f"/api/break-glass/{grant['id']}/review/", json={"outcome": "justified"}).status_code == 403
        )
    assert world.officer.get("/api/break-glass/?state=maybe").status_code == 400
    assert world.officer.get("/api/break-glass/?since=yesterday").status_code == 400
    assert world.officer.get("/api/break-glass/?staff=x").status_code == 400
    assert world.officer.post("/api/break-glass/999999999/review/", json={"outcome": "justified"}).status_code == 404
    assert world.officer.post(f"/api/break-glass/{grant['id']}/review/", json={"outcome": "meh"}).status_code == 400

    reviewed = world.officer.post(
        f"/api/break-glass/{grant['id']}/review/", json={"outcome": "justified", "comment": "Collapse confirmed."}
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["outcome"] == "justified" and reviewed.json()["reviewed_by"] == world.officer.staff.pk
    again = world.admin.post(f"/api/break-glass/{grant['id']}/review/", json={"outcome": "not_justified"})
    assert again.status_code == 409 and again.json()["code"] == "already_reviewed"
    assert world.officer.get(query).json()["results"] == []
    closed = world.officer.get(query.replace("state=open", "state=closed")).json()["results"]
    assert [g["id"] for g in closed] == [grant["id"]]
    (event,) = events(hospital_a, patient, "break_glass_reviewed")
    assert event.actor_id == world.officer.user.pk and event.detail["comment"] == "Collapse confirmed."


def test_not_justified_ends_access_at_once(world, hospital_a):
    patient = new_patient(hospital_a)
    grant = world.nurse.post(f"/api/patients/{patient.pk}/break-glass/", json={"reason": REASON}).json()
    assert world.nurse.get(f"/api/patients/{patient.pk}/").status_code == 200
    world.admin.post(f"/api/break-glass/{grant['id']}/review/", json={"outcome": "not_justified"})
    assert world.nurse.get(f"/api/patients/{patient.pk}/").status_code == 404


def test_the_policy_is_the_admins(world, hospital_a):
    assert world.officer.get("/api/access-policy/").status_code == 403
    assert world.admin.get("/api/access-policy/").json()["break_glass_minutes"] == 60
    assert world.admin.patch("/api/access-policy/", json={"break_glass_minutes": 0}).status_code == 400
    assert world.admin.patch("/api/access-policy/", json={"break_glass_minutes": "x"}).status_code == 400
    try:
        assert world.admin.patch("/api/access-policy/", json={"break_glass_minutes": 10}).status_code == 200
        patient = new_patient(hospital_a)
        grant = world.nurse.post(f"/api/patients/{patient.pk}/break-glass/", json={"reason": REASON}).json()
        assert datetime.datetime.fromisoformat(grant["expires_at"]) - datetime.datetime.fromisoformat(
            grant["opened_at"]
        ) == datetime.timedelta(minutes=10)
    finally:
        world.admin.patch("/api/access-policy/", json={"break_glass_minutes": 60})


def test_the_worker_sweeps_expired_grants(world, hospital_a):
    patient = new_patient(hospital_a)
    grant = world.nurse.post(f"/api/patients/{patient.pk}/break-glass/", json={"reason": REASON}).json()
    expire(hospital_a, grant["id"])
    current_app.send_task("hospitals.tasks.break_glass_sweep_task")

    def ended() -> bool:
        with tenant_context(hospital_a):
            return BreakGlassGrant.objects.get(pk=grant["id"]).ended_at is not None

    wait_until(ended, ANSWER_TIMEOUT, "the worker never ended the expired grant")
    (event,) = events(hospital_a, patient, "break_glass_ended")
    assert event.detail["break_glass"] == {"id": grant["id"], "reason": REASON}


# The access log --------------------------------------------------------------------------------------------


def log_of(reader: Actor, patient: Patient, query: str = "") -> list[dict]:
    answer = reader.get(f"/api/patients/{patient.pk}/access-log/?page_size=100{query}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["next"] is None
    return answer.json()["results"]


def test_the_access_log_names_every_grant(world, hospital_a, server_url):
    patient = world.patient
    world.admin.get(f"/api/patients/{patient.pk}/")
    world.doctor.get(f"/api/patients/{patient.pk}/")
    world.head.get(f"/api/patients/{patient.pk}/notes/")
    world.doctor.patch(f"/api/patients/{patient.pk}/", json={"phone": "+1 555 0100"})
    grant = world.nurse.post(f"/api/patients/{patient.pk}/break-glass/", json={"reason": REASON}).json()
    world.nurse.get(f"/api/patients/{patient.pk}/")
    assert world.receptionist.get(f"/api/patients/{patient.pk}/").status_code == 404  # not its registration

    entries = log_of(world.officer, patient)
    assert entries == log_of(world.admin, patient)
    by = {(e["actor_id"], e["action"]): e for e in reversed(entries)}  # the newest of each
    assert by[world.admin.user.pk, "patient_viewed"]["via"] == ["admin_role"]
    assert by[world.doctor.user.pk, "patient_viewed"]["via"] == ["care_team"]
    assert by[world.doctor.user.pk, "patient_changed"]["via"] == ["care_team"]
    assert by[world.head.user.pk, "notes_viewed"]["via"] == ["department_head"]
    nurse_view = by[world.nurse.user.pk, "patient_viewed"]
    assert nurse_view["via"] == ["break_glass"] and nurse_view["break_glass"] == {"id": grant["id"], "reason": REASON}
    assert nurse_view["ip"] == "127.0.0.1" and nurse_view["user_agent"] == "pytest-break-glass"
    added = [e for e in entries if e["action"] == "permission_granted"]
    assert added and added[-1]["actor_id"] is None  # the care team was made by a service call, no request
    assert world.receptionist.user.pk not in {e["actor_id"] for e in entries}
    assert [e["created"] for e in entries] == sorted((e["created"] for e in entries), reverse=True)

    # Filters, pages, and refusals.
    assert {e["actor_id"] for e in log_of(world.officer, patient, "&via=break_glass")} == {world.nurse.user.pk}
    assert {e["action"] for e in log_of(world.officer, patient, "&action=patient_changed")} == {"patient_changed"}
    assert {e["actor_id"] for e in log_of(world.officer, patient, f"&actor={world.head.user.email}")} == {
        world.head.user.pk
    }
    assert log_of(world.officer, patient, "&since=2999-01-01T00:00:00Z") == []
    page = world.officer.get(f"/api/patients/{patient.pk}/access-log/?page_size=2").json()
    assert page["count"] == len(entries) and len(page["results"]) == 2 and page["next"]
    for bad in ("via=friendship", "action=nope", "since=soon", "actor=a%00b", "page=x"):
        answer = world.officer.get(f"/api/patients/{patient.pk}/access-log/?{bad}")
        assert answer.status_code in (400, 404) and answer.json()["code"], (bad, answer.text)
    for outsider in (world.doctor, world.nurse, world.head, world.receptionist, world.no_role):
        assert outsider.get(f"/api/patients/{patient.pk}/access-log/").status_code == 403
    assert world.officer.get("/api/patients/999999999999999/access-log/").status_code == 404


def test_the_access_log_exports_as_streamed_csv(world, hospital_a, monkeypatch):
    patient = new_patient(hospital_a)
    formula = actor(world.nurse.api.base_url, hospital_a, Role.NURSE, user_agent="=HYPERLINK(1)")
    formula.post(f"/api/patients/{patient.pk}/break-glass/", json={"reason": REASON})
    for _ in range(4):
        formula.get(f"/api/patients/{patient.pk}/")
        world.admin.get(f"/api/patients/{patient.pk}/notes/")
    monkeypatch.setattr(access_views, "CSV_CHUNK", 3)  # several chunks (the live server runs in this process)

    expected = log_of(world.admin, patient)
    answer = world.officer.get(f"/api/patients/{patient.pk}/access-log/export/")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    assert "Content-Length" not in answer.headers  # streamed
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert (rows[0]["action"], rows[0]["actor_email"]) == ("access_log_viewed", world.officer.user.email)  # itself
    assert [(r["action"], r["actor_email"]) for r in rows[1:]] == [(e["action"], e["actor_email"]) for e in expected]
    assert {r["user_agent"] for r in rows if r["actor_email"] == formula.user.email} == {"'=HYPERLINK(1)"}
    assert {r["reason"] for r in rows if r["via"] == "break_glass"} == {REASON}

    filtered = world.officer.get(f"/api/patients/{patient.pk}/access-log/export/?via=admin_role")
    assert {r["via"] for r in csv.DictReader(io.StringIO(filtered.text))} == {"admin_role"}
    assert world.officer.get(f"/api/patients/{patient.pk}/access-log/export/?via=x").status_code == 400
    assert world.doctor.get(f"/api/patients/{patient.pk}/access-log/export/").status_code == 403
    (export,) = events(hospital_a, patient, "access_log_viewed")[-1:]
    assert export.actor_id == world.officer.user.pk
