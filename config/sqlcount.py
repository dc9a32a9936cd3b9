"""Test settings only: each response says how many SQL statements its request sent (`X-SQL-Statements`).

Counted at the driver (tenants/postgresql_backend), below Django's query log, so the statements Django
does not log (`SET search_path`, the health check's `SELECT 1`) count too. The HTTP tier holds the hot
paths to a statement budget with it (tests/test_request_cost.py).
"""

from tenants.postgresql_backend.base import statements_sent

HEADER = "X-SQL-Statements"


class StatementCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        before = statements_sent()
        response = self.get_response(request)
        response[HEADER] = str(statements_sent() - before)
        return response
