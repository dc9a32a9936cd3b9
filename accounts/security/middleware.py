from accounts.security.attempts import LoginRefused
from core.api import json_error


class LoginRefusedMiddleware:
    """A login refused by the attempt budget outside DRF (Django's admin form): the API's 429, not a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, LoginRefused):
            return None
        response = json_error(exception.status_code, str(exception.detail), exception.default_code)
        response["Retry-After"] = str(exception.wait)
        return response
