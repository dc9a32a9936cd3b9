"""Logs: one JSON line per request and per Celery task run, each carrying a request id.

The request id lives in django-guid's context variable, so every log line
(through its `CorrelationId` filter, see LOGGING) and every task queued during
the request (django-guid's Celery integration sends it as a message header)
carry it. What is never logged: request bodies, query strings (patient
searches), headers (Authorization, Cookie), tokens, emails.
"""

from __future__ import annotations

import logging
import logging.config
import re
import time
import uuid

from django.utils.functional import LazyObject, empty
from django_guid.context import guid as request_id_var
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from core.http import client_ip

REQUEST_ID_HEADER = "X-Request-ID"
# Load balancers send ids of their own formats (hex, UUIDs, "Root=1-..."), not
# only the UUIDs django-guid's middleware accepts; anything else is replaced,
# so a client cannot put arbitrary text into our logs and response headers.
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")
# URL parameters that are secrets (links from emails): such a path is logged as its pattern.
_SECRET_URL_KWARGS = {"token", "key", "uid"}
# PostgreSQL's DETAIL quotes the data an error is about ("Key (mrn)=(A-1234) already exists.",
# "Failing row contains (..., 'Quentin', ...)"); it ends at the line's end, or at an escaped
# newline or quote when the exception is logged as its repr (Celery's failure line).
_DATABASE_DETAIL = re.compile(r"DETAIL:(?:(?!\\n)[^\n'\"])*")

request_logger = logging.getLogger("hospital.request")


def redact(text: str) -> str:
    return _DATABASE_DETAIL.sub("DETAIL: [redacted]", text)


class RedactDatabaseDetails(logging.Filter):
    """Keeps PostgreSQL's DETAIL (patient data) out of messages, e.g. Celery's "raised unexpected: ...".

    Tracebacks are redacted by the formatters (their formatException), which format them after filters run.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "DETAIL:" in message:
            record.msg, record.args = redact(message), None
        return True


class TextFormatter(logging.Formatter):
    def formatException(self, exc_info) -> str:
        return redact(str(super().formatException(exc_info)))


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, request_id and the record's extras."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        # Django passes the HttpRequest as an extra; its repr has the query string.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(**kwargs)

    def formatException(self, exc_info) -> str:
        return redact(str(super().formatException(exc_info)))


class RequestLogMiddleware:
    """Sets the request id (X-Request-ID, echoed back) and logs one line once the response is ready.

    Ours rather than django-guid's middleware, which accepts only UUIDs (or,
    unvalidated, anything of any length). Placed before the tenant middleware
    so unknown hosts are logged too.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = _accepted_id(request.headers.get(REQUEST_ID_HEADER))
        reset = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            path = _loggable_path(request)
            tenant = getattr(request, "tenant", None)
            request_logger.info(
                "%s %s %s %.1fms",
                request.method,
                path,
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                    "host": request.META.get("HTTP_HOST", "")[:255],
                    "schema": getattr(tenant, "schema_name", None),
                    "user_id": _user_id(request),
                    "remote_addr": _client_ip(request),
                },
            )
            return response
        finally:
            request_id_var.reset(reset)


def _accepted_id(sent: str | None) -> str:
    if sent and _ACCEPTED_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def _loggable_path(request) -> str:
    """The path without its query string; a URL that carries a secret is logged as its pattern."""
    match = getattr(request, "resolver_match", None)
    if match is not None and _SECRET_URL_KWARGS & match.kwargs.keys():
        return "/" + match.route
    return request.path[:1000]


def _user_id(request):
    """The authenticated user's id: DRF sets it on the HttpRequest when the view authenticates.

    Django's lazy session user is not evaluated here (that would be a query
    for every request); it counts only if something already looked at it.
    """
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, LazyObject) and user._wrapped is empty):
        return None
    return user.pk if user.is_authenticated else None


def _client_ip(request) -> str:
    return client_ip(request)  # honours TRUSTED_PROXY_COUNT, like the limits and the audit trail
