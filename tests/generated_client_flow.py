"""A program written against clients generated from the API's OpenAPI schemas, used as their types say.

`tests/test_generated_client.py` generates `hospital_client` (a hospital subdomain's schema) and
`platform_client` (the platform domain's) with openapi-python-client, type-checks this file with mypy
(strict) against them, and runs `run()` against the live test server. It is what a mobile app, a CLI or a
server-to-server integration does: it logs in as `client: app`, keeps its refresh token itself (there is
no cookie jar: every response is checked to set no cookie, and the jar refuses any), refreshes and logs out
with the token in the body. It knows the server only through the schemas; Python's resolver does not map
`*.localhost`, so it connects to one address and names each domain in the `Host` header.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, TypeVar

import httpx
import platform_client
from hospital_client import AuthenticatedClient as HospitalAuthenticated
from hospital_client import Client as HospitalClient
from hospital_client.api.accounts import (
    accounts_invitations_accept_create,
    accounts_logout_create,
    accounts_token_refresh_create,
    accounts_token_verify_create,
    accounts_user_retrieve,
)
from hospital_client.api.api import (
    api_invitations_create,
    api_patients_care_team_create,
    api_patients_care_team_list,
    api_patients_create,
    api_patients_list,
    api_patients_notes_create,
    api_patients_notes_list,
    api_staff_list,
)
from hospital_client.models import (
    AccountsTokenVerifyCreateResponse200,
    CareTeam,
    CareTeamRequest,
    CareTeamRoleEnum,
    ClientEnum,
    Detail,
    Error,
    Invitation,
    InvitationAcceptRequest,
    InvitationCreateRequest,
    Login,
    Note,
    NoteRequest,
    PaginatedNoteList,
    PaginatedPatientList,
    PaginatedStaffList,
    Patient,
    PatientRequest,
    RefreshRequest,
    RefreshResponse,
    StaffRoleEnum,
    TokenVerifyRequest,
    UserDetails,
)
from hospital_client.types import Response
from platform_client.api.accounts import accounts_login_create as platform_login_create
from platform_client.api.accounts import accounts_logout_create as platform_logout_create
from platform_client.api.accounts import accounts_token_refresh_create as platform_refresh_create
from platform_client.api.api import api_platform_hospitals_create, api_platform_hospitals_list
from platform_client.models import ClientEnum as PlatformClientEnum
from platform_client.models import Hospital, HospitalOnboardRequest, PaginatedHospitalList
from platform_client.models import Login as PlatformLogin
from platform_client.models import LoginRequest as PlatformLoginRequest
from platform_client.models import RefreshRequest as PlatformRefreshRequest
from platform_client.models import RefreshResponse as PlatformRefreshResponse
from platform_client.types import Response as PlatformResponse

T = TypeVar("T")
TIMEOUT = httpx.Timeout(120.0)  # an answer that comes late on a busy machine is still an answer


@dataclass
class Wire:
    """What crossed the network: every status, and every Set-Cookie the server sent (there must be none)."""

    statuses: list[tuple[str, str, int]] = field(default_factory=list)
    set_cookies: list[str] = field(default_factory=list)

    def httpx_args(self) -> dict[str, Any]:
        def record(response: httpx.Response) -> None:
            self.statuses.append((response.request.method, response.request.url.path, response.status_code))
            self.set_cookies.extend(response.headers.get_list("set-cookie"))

        return {"event_hooks": {"response": [record]}}


def no_jar(http: httpx.Client) -> None:
    """A client without cookies: its jar refuses every cookie (and the server should send none)."""
    http.cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def expect(response: Response[Any] | PlatformResponse[Any], kind: type[T], status: int = 200) -> T:
    """The parsed body of `response`, which must have this status and this documented type."""
    if response.status_code != HTTPStatus(status) or not isinstance(response.parsed, kind):
        raise AssertionError(f"expected {status} {kind.__name__}, got {response.status_code}: {response.content!r}")
    return response.parsed


@dataclass
class Session:
    """A logged-in app: an authenticated client with its access token, and the refresh token it holds itself."""

    api: HospitalAuthenticated
    access: str
    refresh: str


def hospital_anonymous(base_url: str, host: str, wire: Wire) -> HospitalClient:
    client = HospitalClient(
        base_url=base_url,
        headers={"Host": host},
        timeout=TIMEOUT,
        raise_on_unexpected_status=True,
        httpx_args=wire.httpx_args(),
    )
    no_jar(client.get_httpx_client())
    return client


def hospital_session(base_url: str, host: str, wire: Wire, access: str, refresh: str) -> Session:
    api = HospitalAuthenticated(
        base_url=base_url,
        token=access,
        headers={"Host": host},
        timeout=TIMEOUT,
        raise_on_unexpected_status=True,
        httpx_args=wire.httpx_args(),
    )
    no_jar(api.get_httpx_client())
    return Session(api=api, access=access, refresh=refresh)


def refreshed(base_url: str, host: str, wire: Wire, session: Session) -> Session:
    """Trades the refresh token (in the body) for a new access token and the refresh token's successor."""
    anonymous = hospital_anonymous(base_url, host, wire)
    response = accounts_token_refresh_create.sync_detailed(
        client=anonymous, body=RefreshRequest(refresh=session.refresh)
    )
    answer = expect(response, RefreshResponse)
    if not isinstance(answer.refresh, str) or answer.refresh == session.refresh:
        raise AssertionError(f"a body refresh must answer the rotated refresh token, got {answer.refresh!r}")
    return hospital_session(base_url, host, wire, answer.access, answer.refresh)


@dataclass
class Outcome:
    """What `run` saw, for the test to check."""

    hospital: Hospital
    patient: Patient
    notes: PaginatedNoteList
    care_team: list[CareTeam]
    doctor_sees: PaginatedPatientList
    logged_out_refresh: Error
    missing_refresh: Error
    wire: Wire


def run(
    *,
    base_url: str,
    platform_host: str,
    platform_email: str,
    platform_password: str,
    slug: str,
    admin_email: str,
    doctor_email: str,
    invitation_token: Callable[[str], str],
) -> Outcome:
    """Onboards a hospital, accepts its invitations, registers a patient, treats it, and logs everyone out.

    `invitation_token(email)` returns the token of the invitation mailed to `email` (from the mail sink).
    """
    wire = Wire()

    # The platform operator: log in as an app, onboard the hospital, find it in the list, refresh, log out.
    platform = platform_client.Client(
        base_url=base_url,
        headers={"Host": platform_host},
        timeout=TIMEOUT,
        raise_on_unexpected_status=True,
        httpx_args=wire.httpx_args(),
    )
    no_jar(platform.get_httpx_client())
    login = expect(
        platform_login_create.sync_detailed(
            client=platform,
            body=PlatformLoginRequest(email=platform_email, password=platform_password, client=PlatformClientEnum.APP),
        ),
        PlatformLogin,
    )
    operator = platform_client.AuthenticatedClient(
        base_url=base_url,
        token=login.access,
        headers={"Host": platform_host},
        timeout=TIMEOUT,
        raise_on_unexpected_status=True,
        httpx_args=wire.httpx_args(),
    )
    no_jar(operator.get_httpx_client())
    hospital = expect(
        api_platform_hospitals_create.sync_detailed(
            client=operator,
            body=HospitalOnboardRequest(name=f"{slug.title()} Clinic", slug=slug, admin_email=admin_email),
        ),
        Hospital,
        201,
    )
    listed = expect(api_platform_hospitals_list.sync_detailed(client=operator, search=slug), PaginatedHospitalList)
    if [h.slug for h in listed.results] != [slug]:
        raise AssertionError(f"onboarded {slug}, listed {[h.slug for h in listed.results]}")
    rotated = expect(
        platform_refresh_create.sync_detailed(client=platform, body=PlatformRefreshRequest(refresh=login.refresh)),
        PlatformRefreshResponse,
    )
    if not isinstance(rotated.refresh, str):
        raise AssertionError("no rotated refresh token in the body")
    expect(
        platform_logout_create.sync_detailed(client=platform, body=PlatformRefreshRequest(refresh=rotated.refresh)),
        platform_client.models.Detail,
    )

    # The hospital's admin accepts the emailed invitation: it answers like a login.
    host = hospital.domain  # e.g. "stmary.localhost": sent as the Host header
    anonymous = hospital_anonymous(base_url, host, wire)

    def accept(email: str, first_name: str) -> Session:
        body = InvitationAcceptRequest(
            token=invitation_token(email), password=platform_password, first_name=first_name, client=ClientEnum.APP
        )
        answer = expect(accounts_invitations_accept_create.sync_detailed(client=anonymous, body=body), Login)
        if not answer.refresh:
            raise AssertionError("an app's login must carry its refresh token")
        return hospital_session(base_url, host, wire, answer.access, answer.refresh)

    admin = accept(admin_email, "Ada")
    me = expect(accounts_user_retrieve.sync_detailed(client=admin.api), UserDetails)
    if me.hospital != slug:
        raise AssertionError(f"the admin belongs to {me.hospital!r}, not {slug!r}")

    # The admin invites a doctor, who accepts; the admin finds the doctor in the staff list.
    expect(
        api_invitations_create.sync_detailed(
            client=admin.api, body=InvitationCreateRequest(email=doctor_email, role=StaffRoleEnum.DOCTOR)
        ),
        Invitation,
        201,
    )
    doctor = accept(doctor_email, "Dan")
    staff = expect(api_staff_list.sync_detailed(client=admin.api, page_size=100), PaginatedStaffList)
    doctor_staff = next(s for s in staff.results if s.email == doctor_email)

    # A patient, the doctor on its care team, a note, and the lists.
    patient = expect(
        api_patients_create.sync_detailed(
            client=admin.api,
            body=PatientRequest(
                mrn=f"{slug}-1", first_name="Pat", last_name="Ient", date_of_birth=datetime.date(1970, 1, 2)
            ),
        ),
        Patient,
        201,
    )
    expect(
        api_patients_care_team_create.sync_detailed(
            patient.id,
            client=admin.api,
            body=CareTeamRequest(staff=doctor_staff.id, role=CareTeamRoleEnum.ATTENDING),
        ),
        CareTeam,
        201,
    )
    doctor = refreshed(base_url, host, wire, doctor)  # the access token may expire at any time: refresh, twice
    doctor = refreshed(base_url, host, wire, doctor)
    expect(
        api_patients_notes_create.sync_detailed(patient.id, client=doctor.api, body=NoteRequest(body="Seen today.")),
        Note,
        201,
    )
    notes = expect(api_patients_notes_list.sync_detailed(patient.id, client=doctor.api), PaginatedNoteList)
    care_team: list[CareTeam] = expect(api_patients_care_team_list.sync_detailed(patient.id, client=admin.api), list)
    doctor_sees = expect(api_patients_list.sync_detailed(client=doctor.api), PaginatedPatientList)

    # Verify answers {}; log out with the refresh token in the body; it is dead afterwards.
    expect(
        accounts_token_verify_create.sync_detailed(client=anonymous, body=TokenVerifyRequest(token=doctor.access)),
        AccountsTokenVerifyCreateResponse200,
    )
    for session in (admin, doctor):
        expect(
            accounts_logout_create.sync_detailed(client=anonymous, body=RefreshRequest(refresh=session.refresh)),
            Detail,
        )
    logged_out = expect(
        accounts_token_refresh_create.sync_detailed(client=anonymous, body=RefreshRequest(refresh=doctor.refresh)),
        Error,
        401,
    )
    missing = expect(accounts_logout_create.sync_detailed(client=anonymous, body=RefreshRequest()), Error, 401)
    return Outcome(
        hospital=hospital,
        patient=patient,
        notes=notes,
        care_team=care_team,
        doctor_sees=doctor_sees,
        logged_out_refresh=logged_out,
        missing_refresh=missing,
        wire=wire,
    )
