"""The OpenAPI 3 schema (drf-spectacular): one per URLconf, served at GET /api/schema/ without authentication,
and read by the docs page GET /api/docs/ (Swagger UI).

- `ErrorSerializer` is the one JSON error shape of `core.api` (component `Error`);
- `AutoSchema` adds the errors every operation can answer (400, 401, 403, 404, 413, 429) to each one;
- `postprocess_schema` writes the request size limit and the error codes into the schema's description;
- each view describes its own operations with `@extend_schema` / `@extend_schema_view` where spectacular
  cannot infer them (ARCHITECTURE.md "API style"); the only extension of ours is the JWT security scheme,
  beside its authentication class (`accounts.authentication.HospitalJWTScheme`).
"""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    """Every error: `detail` for people, `code` for programs, `fields` for invalid input."""

    detail = serializers.CharField(help_text="What went wrong, for people.")
    code = serializers.CharField(
        help_text="A stable code for programs, e.g. `invalid`, `not_found`, `token_not_valid`, `body_too_large`."
    )
    fields = serializers.DictField(  # type: ignore[assignment]  # a declared field, not Serializer.fields
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Invalid input only: the messages of each field.",
    )

    class Meta:
        ref_name = "Error"


class DetailSerializer(serializers.Serializer):
    """A success answer that only says what happened."""

    detail = serializers.CharField()

    class Meta:
        ref_name = "Detail"


def _limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


ERROR_RESPONSES = {
    "400": lambda: (
        "Invalid input (`invalid`, with `fields`), malformed JSON (`parse_error`), or a host name "
        "this server does not serve (`disallowed_host`)."
    ),
    "401": lambda: "Missing, expired, forged or other-hospital token (`token_not_valid`, `not_authenticated`).",
    "403": lambda: (
        "Not allowed (`permission_denied`), suspended hospital (`hospital_suspended`), a "
        "cookie-authenticated write without the CSRF header (`csrf_failed`), an enrolment-only session "
        "(`mfa_enrollment_required`), or a sensitive change without a recent second factor "
        "(`reauthentication_required`)."
    ),
    "404": lambda: "Nothing here (`not_found`), or no hospital at this host name (`unknown_host`).",
    "413": lambda: f"Request body over {_limit()} bytes (`DATA_UPLOAD_MAX_MEMORY_SIZE`; `body_too_large`).",
    "429": lambda: (
        "Too many requests (`throttled`, `account_locked` after failed logins, `mfa_locked` after wrong "
        "second-factor codes): retry after "
        "the `Retry-After` header's seconds."
    ),
}


class AutoSchema(SpectacularAutoSchema):
    """Spectacular's schema, plus the error answers every operation may give, in the `Error` shape.

    Anonymous operations declare no `security` at all: spectacular writes `[{}]` ("no authentication is one
    option"), which generators such as openapi-python-client read as "needs authentication" (any non-empty
    list), typing login itself as needing a logged-in client.
    """

    def get_auth(self):
        auths = super().get_auth()
        return [] if auths == [{}] else auths

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in ERROR_RESPONSES.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description()), code, direction=direction
                )
        return responses


def lib_doc_excludes() -> list:
    """Classes whose docstrings never describe an operation (`GET_LIB_DOC_EXCLUDES`): DRF's, as spectacular
    has it, and `core.api.MethodPermissions`, whose own docstring a view without one would otherwise show."""
    from drf_spectacular.plumbing import get_lib_doc_excludes

    from core.api import MethodPermissions

    return [*get_lib_doc_excludes(), MethodPermissions]


def postprocess_schema(result, generator, request, public):
    """The request size limit and the error shape, in the schema's own description."""
    result["info"]["description"] = (
        "Hospital platform API. Every JSON error has the shape of the `Error` component: "
        '`{"detail": "...", "code": "...", "fields"?: {"<field>": ["..."]}}`.\n\n'
        f"Request bodies are limited to {_limit()} bytes (`DATA_UPLOAD_MAX_MEMORY_SIZE`); a larger body is "
        "refused with 413 `body_too_large`. Authenticate with `Authorization: Bearer <access>` or the "
        "`hospital-access` cookie (cookie-authenticated writes need the `X-CSRFToken` header)."
    )
    return result


def schema_path(urlconf: str):
    """GET /api/schema/ on one URLconf: its own schema, for anyone (YAML, or JSON with ?format=json)."""
    from drf_spectacular.views import SpectacularAPIView  # needs this module's AutoSchema first

    view = SpectacularAPIView.as_view(urlconf=urlconf, authentication_classes=[], permission_classes=[AllowAny])
    return path("api/schema/", view, name="openapi-schema")


def docs_path():
    """GET /api/docs/ on one URLconf: Swagger UI reading that URLconf's own /api/schema/.

    Its CSS, JS and favicon are the sidecar's static files (SPECTACULAR_SETTINGS), so nothing is loaded from a
    CDN; no Redoc, whose template fetches Google Fonts. The view excludes itself from the schema, so the
    fuzzer and the schema checks never see it.
    """
    from drf_spectacular.views import SpectacularSwaggerView

    view = SpectacularSwaggerView.as_view(
        url_name="openapi-schema", authentication_classes=[], permission_classes=[AllowAny]
    )
    return path("api/docs/", view, name="openapi-docs")
