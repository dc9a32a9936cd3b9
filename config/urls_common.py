"""Pieces both URLconfs share: the JSON error handlers and the JSON catch-all 404."""

from django.urls import re_path

from core import api

# Last pattern of each URLconf: unknown paths get a JSON 404 even with DEBUG on.
catch_all = re_path(r"^.*$", api.not_found_view)

handler400 = "core.api.bad_request_view"
handler403 = "core.api.permission_denied_view"
handler404 = "core.api.not_found_view"
handler500 = "core.api.server_error_view"
