"""The WebAuthn relying party (passkeys and security keys), on Yubico's fido2: options out, answers checked.

The relying party is the host the request came to: a hospital's own subdomain, or the platform's domain. A
passkey registered at one hospital is therefore worthless at any other: browsers offer a credential only to
its RP id, and every signature covers that id's hash, which the server here checks against its own host.
The origin a client reports must be exactly the request's own (scheme, host and port), and a secure one
(https, or http on `localhost` and its subdomains, as browsers allow): a page elsewhere cannot relay a
passkey's answer to us.

This module only speaks the protocol; what is stored and when (accounts/mfa/services.py) is not its business.
Options and answers travel as the JSON of `PublicKeyCredential.parseCreationOptionsFromJSON()` /
`parseRequestOptionsFromJSON()` and `credential.toJSON()`: base64url for every byte string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fido2.rpid import verify_rp_id
from fido2.server import Fido2Server
from fido2.utils import websafe_encode
from fido2.webauthn import (
    AttestedCredentialData,
    AuthenticationResponse,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

MAX_CREDENTIAL_ID = 1023  # bytes: WebAuthn Level 3's limit (what Authenticator.credential_id is sized for)


class WebauthnInvalid(Exception):
    """The client's answer does not check out (wrong challenge, origin, RP, signature, or not WebAuthn at all)."""


def relying_party(request) -> tuple[str, str]:
    """(RP id, origin) of the host `request` came to: ("alpha.example.org", "https://alpha.example.org")."""
    host = request.get_host()  # checked against ALLOWED_HOSTS and routed to its hospital already
    return host.rsplit(":", 1)[0], f"{request.scheme}://{host}"


def _plain(state: dict) -> dict:
    """fido2's state as plain JSON (it holds enum members), to be kept in a token or a JSON column."""
    return json.loads(json.dumps(state))


def _server(request, rp_name: str = "") -> Fido2Server:
    rp_id, origin = relying_party(request)
    return Fido2Server(
        PublicKeyCredentialRpEntity(id=rp_id, name=rp_name),
        verify_origin=lambda reported: reported == origin and verify_rp_id(rp_id, reported),
    )


def credential_id_text(credential_id: bytes) -> str:
    return websafe_encode(credential_id)


def registration_options(
    request, *, rp_name: str, user_handle: bytes, email: str, display_name: str, existing: list[bytes]
) -> tuple[dict, dict]:
    """The options for `navigator.credentials.create()` (JSON form) and the state to check the answer with.

    A passkey is preferred (a discoverable credential with user verification), a plain security key does;
    the authenticators already registered are excluded, so one device is not registered twice.
    """
    options, state = _server(request, rp_name).register_begin(
        PublicKeyCredentialUserEntity(id=user_handle, name=email, display_name=display_name),
        credentials=[AttestedCredentialData(bytes(blob)) for blob in existing],
        resident_key_requirement=ResidentKeyRequirement.PREFERRED,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return dict(options)["publicKey"], _plain(state)


@dataclass(frozen=True)
class Registered:
    credential_id: str  # base64url
    credential: bytes  # fido2's AttestedCredentialData: the id and the public key
    sign_count: int


def registration_verify(request, *, state: dict, response: dict) -> Registered:
    try:
        auth_data = _server(request).register_complete(state, response)
        data = auth_data.credential_data
        assert data is not None  # noqa: S101 (register_complete guarantees it)
        if len(data.credential_id) > MAX_CREDENTIAL_ID:
            raise ValueError(f"credential id longer than {MAX_CREDENTIAL_ID} bytes")
    except Exception as error:  # noqa: BLE001 fido2 parses untrusted bytes: any failure there is the client's
        raise WebauthnInvalid(str(error) or type(error).__name__) from error
    return Registered(credential_id_text(data.credential_id), bytes(data), auth_data.counter)


def assertion_options(request, *, credentials: list[bytes]) -> tuple[dict, dict]:
    """The options for `navigator.credentials.get()` (JSON form), allowing only `credentials`, and the state."""
    options, state = _server(request).authenticate_begin(
        [AttestedCredentialData(bytes(blob)) for blob in credentials],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return dict(options)["publicKey"], _plain(state)


@dataclass(frozen=True)
class Asserted:
    credential_id: str  # base64url: which of the account's credentials signed
    sign_count: int


def assertion_verify(request, *, state: dict, credentials: list[bytes], response: dict) -> Asserted:
    try:
        server = _server(request)
        matched = server.authenticate_complete(state, [AttestedCredentialData(bytes(b)) for b in credentials], response)
        counter = AuthenticationResponse.from_dict(response).response.authenticator_data.counter
    except Exception as error:  # noqa: BLE001 as in registration_verify
        raise WebauthnInvalid(str(error) or type(error).__name__) from error
    return Asserted(credential_id_text(matched.credential_id), counter)
