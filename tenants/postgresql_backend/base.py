"""django-tenants' PostgreSQL backend, minus two statements per request (DATABASES ENGINE).

- `SET search_path` only when the session's path changes. django-tenants forgets the path it set whenever a
  tenant is set (every request sets one), so every request re-issued it; here setting the tenant the
  session is already on keeps it. It is still forgotten wherever PostgreSQL may have reverted or lost it
  (rollback, rollback to a savepoint, close: django-tenants' own overrides) and on a new connection.
- `schema_qualified_cursor()`: a cursor for a statement that names the schema of every table it reads (the
  authenticated request's user statement, all `public.`): it runs on the session's path as it is, so a
  request to another hospital than the connection's last one sends no `SET search_path` unless it goes on
  to read the hospital's own tables. With `prepared=True` (outside a transaction) the statement is a
  server-side prepared statement of the session: PostgreSQL plans it once per connection, not per
  request. Planning was most of the authed request's statement (0.28-0.43 ms executed as text, 0.11-0.13
  ms prepared), and it grew with the size of the public tables, which the prepared plan does not (README
  "1,000 hospitals"). Everything else stays unprepared, as Django leaves it: a prepared statement needs a
  session of its own on the server, which PgBouncer gives in session mode (SCALING.md).
- Its schema editor creates no constraint from a hospital's schema to a public table (schema.py).
- The health check (CONN_HEALTH_CHECKS) without a round trip. Django's runs `SELECT 1` at the start of
  every request. An idle connection has nothing to read: if its socket is readable, the server has sent
  something unprompted, in practice the FATAL message and end-of-file of a terminated or restarted
  backend, so the connection is dropped and a new one made. A silent network cut is not seen here, as it
  was not by `SELECT 1` either (that waited for the TCP timeout).
"""

from __future__ import annotations

import select
import sys
import threading

import psycopg
from django.conf import settings
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from django_tenants.postgresql_backend import base

from tenants.postgresql_backend.schema import DatabaseSchemaEditor

# Statements sent by this thread's connections, counted only where settings.DB_STATEMENT_COUNTER is on
# (the test settings: config/sqlcount.py reports them per request).
_counter = threading.local()


def statements_sent() -> int:
    """Statements this thread has sent to PostgreSQL through any cursor, Django's or raw (SELECT 1, SET)."""
    return getattr(_counter, "n", 0)


def _counting(cursor_class):
    class CountingCursor(cursor_class):
        def execute(self, *args, **kwargs):
            _counter.n = statements_sent() + 1
            return super().execute(*args, **kwargs)

        def executemany(self, query, params_seq, *args, **kwargs):
            params_seq = list(params_seq)
            _counter.n = statements_sent() + len(params_seq)
            return super().executemany(query, params_seq, *args, **kwargs)

    return CountingCursor


class PreparedCursor(ServerBindingCursor):
    """Binds parameters on the server and prepares each statement at its first execution in the session.

    A migration that changes the type of a column the statement returns makes PostgreSQL refuse the
    prepared statement ("cached plan must not change result type") for the rest of the session: it is
    then deallocated (psycopg forgets its names on seeing DEALLOCATE ALL) and run again, prepared afresh.
    Only used outside a transaction, where a failed statement leaves nothing to roll back.
    """

    def execute(self, query, params=None, *, prepare=None, binary=None):
        try:
            return super().execute(query, params, prepare=True, binary=binary)
        except psycopg.errors.FeatureNotSupported as exc:
            if exc.diag.source_function != "RevalidateCachedQuery":  # the message may be translated; this not
                raise
            super().execute("DEALLOCATE ALL")
            return super().execute(query, params, prepare=True, binary=binary)


_COUNTED_PREPARED = _counting(PreparedCursor)


class DatabaseOperations(PostgresOperations):
    def last_executed_query(self, cursor, sql, params):
        """Django's reads a client-side cursor's merged text, which a PreparedCursor has not: its statement
        is written out as Django does it for server-side binding (for connection.queries and DEBUG logs)."""
        if isinstance(cursor, PreparedCursor):
            try:
                return self.compose_sql(sql, params)
            except psycopg.errors.DataError:
                return None
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor  # no constraint from a hospital's schema to a public table
    ops_class = DatabaseOperations  # the statements of a PreparedCursor in connection.queries
    _search_path_left = False  # set while schema_qualified_cursor() opens its cursor
    _prepared_cursor = False  # likewise, when that cursor prepares its statements

    def schema_qualified_cursor(self, *, prepared: bool = False):
        self._search_path_left = True
        self._prepared_cursor = prepared and not self.in_atomic_block and self.get_autocommit()
        try:
            return self.cursor()
        finally:
            self._search_path_left = self._prepared_cursor = False

    def create_cursor(self, name=None):
        if not self._prepared_cursor or name is not None:
            return super().create_cursor(name)
        plain = self.connection.cursor_factory
        counted = getattr(settings, "DB_STATEMENT_COUNTER", False)
        self.connection.cursor_factory = _COUNTED_PREPARED if counted else PreparedCursor
        try:
            return super().create_cursor()  # Django's, for its time zone handling
        finally:
            self.connection.cursor_factory = plain

    def _handle_search_path(self, cursor=None):
        if not self._search_path_left:
            super()._handle_search_path(cursor)

    def set_tenant(self, tenant, include_public=True):
        in_session = self.search_path_set_schemas
        super().set_tenant(tenant, include_public)
        if in_session is not None and self._get_cursor_search_paths() == in_session:
            self.search_path_set_schemas = in_session  # the session is already there: nothing to SET

    def get_new_connection(self, conn_params):
        self.search_path_set_schemas = None  # a new session starts on the server's default path
        connection = super().get_new_connection(conn_params)
        if connection.prepare_threshold is None:
            # Django turns psycopg's prepared statements off, which `prepare=True` cannot override. Only a
            # PreparedCursor asks for them; no other statement reaches this threshold (client-side cursors
            # never prepare).
            connection.prepare_threshold = sys.maxsize
        if getattr(settings, "DB_STATEMENT_COUNTER", False):
            connection.cursor_factory = _counting(connection.cursor_factory)
        return connection

    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.pgconn.status != 0:  # 0: libpq's CONNECTION_OK
            return False
        if conn.info.transaction_status != 0:  # 0: idle; anything else is not a connection to reuse as is
            return super().is_usable()
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
