"""A software passkey for the HTTP tier: what a browser and its authenticator together send, in WebAuthn's
JSON form (`PublicKeyCredential.toJSON()`), from the JSON options a browser would parse.

Like soft-webauthn (which pins fido2 < 2 and has not moved since 2022), it holds one ES256 key and signs
with `cryptography`; the CBOR and COSE encodings are fido2's. It behaves as a browser does where that is a
security rule: it answers only for the relying party its credential was made for, only if that RP id is the
origin's host or a parent of it, and only if the options allow its credential. `forge_*` arguments let a test
play the attacker who skips those rules.
"""

from __future__ import annotations

import copy
import json
import os
import struct
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from fido2.cose import ES256
from fido2.utils import sha256, websafe_decode, websafe_encode

UP, UV, AT = 0x01, 0x04, 0x40  # authenticator data flags: user present, user verified, attested data


class NotAllowed(Exception):
    """What a browser's `navigator.credentials` call rejects with (NotAllowedError / SecurityError)."""


class SoftPasskey:
    def __init__(self, *, counts: bool = True) -> None:
        self.credential_id = os.urandom(32)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.counts = counts  # False: an authenticator that keeps no signature counter (always 0)
        self.sign_count = 0
        self.rp_id: str | None = None
        self.user_handle: str | None = None

    @property
    def id(self) -> str:
        return websafe_encode(self.credential_id)

    def clone(self) -> SoftPasskey:
        """A copy of the key, counter and all (what cloning a hardware key would give an attacker)."""
        return copy.copy(self)

    def _check_origin(self, rp_id: str, origin: str) -> None:
        host = urlsplit(origin).hostname or ""
        if host != rp_id and not host.endswith("." + rp_id):
            raise NotAllowed(f"RP id {rp_id!r} is not valid for {origin}")

    def create(self, options: dict, origin: str) -> dict:
        """`navigator.credentials.create({publicKey})` and `toJSON()`; `options` as the server sent them."""
        if not any(param["alg"] == ES256.ALGORITHM for param in options["pubKeyCredParams"]):
            raise NotAllowed("no algorithm this authenticator has")
        if any(c["id"] == self.id for c in options.get("excludeCredentials") or []):
            raise NotAllowed("this authenticator is registered already (excludeCredentials)")
        rp_id = options["rp"]["id"]
        self._check_origin(rp_id, origin)
        self.rp_id, self.user_handle = rp_id, options["user"]["id"]
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        public_key = cbor.encode(ES256.from_cryptography_key(self.key.public_key()))
        auth_data = (
            sha256(rp_id.encode())
            + bytes([UP | UV | AT])
            + struct.pack(">I", self.sign_count)
            + bytes(16)  # AAGUID: none
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + public_key
        )
        attestation = cbor.encode({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "attestationObject": websafe_encode(attestation),
                "transports": ["internal"],
            },
        }

    def get(self, options: dict, origin: str, *, forge_origin: str | None = None, forge_rp_id: str | None = None):
        """`navigator.credentials.get({publicKey})` and `toJSON()`.

        `forge_origin` reports another origin than the page's (a relaying phishing page would have to);
        `forge_rp_id` signs for another RP id than the options name, with no browser check in between.
        """
        rp_id = options["rpId"]
        if forge_rp_id is None:
            self._check_origin(rp_id, origin)
            if rp_id != self.rp_id:
                raise NotAllowed("no credential for this relying party")
        allowed = [c["id"] for c in options.get("allowCredentials") or []]
        if allowed and self.id not in allowed:
            raise NotAllowed("this credential is not allowed")
        if self.counts:
            self.sign_count += 1
        client_data = self._client_data("webauthn.get", options["challenge"], forge_origin or origin)
        auth_data = sha256((forge_rp_id or rp_id).encode()) + bytes([UP | UV]) + struct.pack(">I", self.sign_count)
        signature = self.key.sign(auth_data + sha256(client_data), ec.ECDSA(hashes.SHA256()))
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "authenticatorData": websafe_encode(auth_data),
                "signature": websafe_encode(signature),
                "userHandle": self.user_handle,
            },
        }

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        websafe_decode(challenge)  # a browser refuses options whose challenge is not base64url
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()
