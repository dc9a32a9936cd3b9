"""What every app's API shares: one JSON error shape and the handlers that produce it.

Every error, from DRF, Django or the tenant middleware, answers
``{"detail": "<message for people>", "code": "<stable code for programs>"}``,
plus ``"fields": {"<field>": ["<message>", ...]}`` for invalid input.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceError(Exception):
    """A business rule said no. Services raise it; the API answers 400 (or `status`)."""

    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        status: int = status.HTTP_400_BAD_REQUEST,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.status = status


def error_body(detail: str, code: str, fields: dict | None = None) -> dict:
    body: dict[str, object] = {"detail": str(detail), "code": code}
    if fields:
        body["fields"] = fields
    return body


def json_error(status_code: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse(error_body(detail, code), status=status_code)


def _validation_body(detail) -> dict:
    if isinstance(detail, dict):
        fields = {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
        general = fields.pop("non_field_errors", None)
        message = general[0] if general else "Invalid input."
        return error_body(message, "invalid", fields or None)
    messages = detail if isinstance(detail, list) else [detail]
    return error_body(str(messages[0]) if messages else "Invalid input.", "invalid")


def exception_handler(exc, context):
    """DRF exception handler: every error in one shape, never a 500 for bad input."""
    if isinstance(exc, ServiceError):
        fields = {exc.field: [exc.message]} if exc.field else None
        return Response(error_body(exc.message, exc.code, fields), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("Request body is too large.", "body_too_large"), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc.detail)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if isinstance(detail, dict):  # simplejwt puts {"detail", "code", "messages"}
            detail, code = detail.get("detail", "Error."), detail.get("code", code)
        if isinstance(code, (list, dict)):
            code = "error"
        response.data = error_body(detail, str(code))
    return response


class MethodPermissions:
    """Views of our API say who may call each HTTP method in one map, `method_permissions`
    (`{"GET": WORKSPACE, "POST": ADMIN}`; HEAD follows GET; a method not listed falls back to
    `permission_classes`). `after_lookup_permissions` holds the classes a handler checks only once it has
    found its record (`check_after_lookup()`), so a record the caller may not see stays a 404, never a 403
    that confirms it exists. `/api/me/permissions/` asks both maps through `allows()`, so what a frontend is
    told and what the endpoint enforces cannot drift apart."""

    method_permissions: dict = {}
    after_lookup_permissions: dict = {}

    @classmethod
    def as_view(cls, **initkwargs):
        # The maps are read from the class (`allows()` has no instance): one given to as_view() would be ignored.
        if {"permission_classes", "method_permissions", "after_lookup_permissions"} & initkwargs.keys():
            raise TypeError(f"{cls.__name__}: declare its permissions on the class, not in as_view()")
        return super().as_view(**initkwargs)

    @classmethod
    def permissions_for(cls, method: str) -> list[BasePermission]:
        method = "GET" if method == "HEAD" else method
        if method in cls.method_permissions:
            return [cls.method_permissions[method]()]
        return [permission() for permission in getattr(cls, "permission_classes", ())]

    def get_permissions(self):
        return self.permissions_for(self.request.method)

    def check_after_lookup(self) -> None:
        view: Any = self
        permission = self.after_lookup_permissions.get(view.request.method)
        if permission is not None and not permission().has_permission(view.request, view):
            view.permission_denied(view.request, message=getattr(permission, "message", None))

    @classmethod
    def allows(cls, request, method: str) -> bool:
        """Whether `request`'s caller passes this view's permission classes for `method` (not object rules)."""
        view: Any = cls()
        view.request, view.args, view.kwargs, view.format_kwarg = request, (), {}, None
        after_lookup = cls.after_lookup_permissions.get(method)
        checks = cls.permissions_for(method) + ([after_lookup()] if after_lookup else [])
        return all(permission.has_permission(request, view) for permission in checks)


class Pagination(PageNumberPagination):
    """Every list: ?page=N, ?page_size=M (at most 100)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100


# Django-level handlers, for errors raised outside DRF views.


def tenant_not_found_view(request: HttpRequest) -> JsonResponse:
    return json_error(404, "No hospital is served at this address.", "unknown_host")


@csrf_exempt  # also the catch-all route: a POST to a wrong path is a 404, not a CSRF failure
def not_found_view(request: HttpRequest, exception=None, **kwargs) -> JsonResponse:
    return json_error(404, "Not found.", "not_found")


def bad_request_view(request: HttpRequest, exception=None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return json_error(413, "Request body is too large.", "body_too_large")
    return json_error(400, "Bad request.", "bad_request")


def permission_denied_view(request: HttpRequest, exception=None) -> JsonResponse:
    return json_error(403, "You do not have permission to perform this action.", "permission_denied")


def csrf_failure_view(request: HttpRequest, reason: str = "") -> JsonResponse:
    return json_error(403, f"CSRF check failed: {reason}", "csrf_failed")


def server_error_view(request: HttpRequest) -> JsonResponse:
    return json_error(500, "Internal server error.", "server_error")
