"""The authenticated request's user statement is prepared on the server, once per database session.

Planning was most of that statement's cost, and it grew with the public tables; a prepared statement is
planned once per connection (tenants/postgresql_backend: PreparedCursor). These tests hold the backend to
what that needs: the statement is prepared outside a transaction and only there, and a migration that
changes the type of a column it returns does not leave the session's prepared statement failing.
"""

import uuid

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.authentication import user_with_hospital
from core.tenancy import schema_qualified_cursor
from tests.conftest import database_url_of


@pytest.fixture
def scratch_table():
    """A table of its own in a schema of its own (the suite's other tests never see it)."""
    schema = "prep_" + uuid.uuid4().hex[:8]
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema}"')
        cursor.execute(f'CREATE TABLE "{schema}".t (name varchar(10))')
        cursor.execute(f"INSERT INTO \"{schema}\".t VALUES ('first')")
    yield f'"{schema}".t'
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')


def prepared_statements(text: str) -> int:
    """How many statements of this session prepared with `text`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement = %s", [text])
        return cursor.fetchone()[0]


def select_prepared(sql: str, params=()) -> list:
    with schema_qualified_cursor(prepared=True) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_the_user_statement_is_prepared_once_and_reused(user_a, hospital_a):
    connection.close()  # a session of its own: nothing prepared yet
    for _ in range(3):
        user = user_with_hospital(user_id=user_a.pk, host="alpha.localhost")
        assert user.email == user_a.email and user.hospital == hospital_a
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%%public.%%accounts_user%%'")
        prepared = [row[0] for row in cursor.fetchall()]
    assert len(prepared) == 1, prepared  # prepared at the first request, reused by the next two


def test_nothing_is_prepared_inside_a_transaction(scratch_table):
    connection.close()
    sql = f"SELECT name FROM {scratch_table} WHERE name = %s"
    with transaction.atomic():
        # A failed statement would abort the caller's transaction: no preparing (and no recovery) here.
        assert select_prepared(sql, ["first"]) == [("first",)]
    assert prepared_statements(sql.replace("%s", "$1")) == 0
    assert select_prepared(sql, ["first"]) == [("first",)]
    assert prepared_statements(sql.replace("%s", "$1")) == 1


def test_a_column_type_change_does_not_break_the_prepared_statement(scratch_table):
    sql = f"SELECT name FROM {scratch_table}"
    assert select_prepared(sql) == [("first",)]
    # What a migration widening the column does, from another session (a DDL statement on this one would
    # make psycopg drop its prepared statements: it watches for ALTER, DROP, ROLLBACK).
    with psycopg.connect(database_url_of(connection.settings_dict), autocommit=True) as migration:
        migration.execute(f"ALTER TABLE {scratch_table} ALTER COLUMN name TYPE varchar(40)")
        migration.execute(f"INSERT INTO {scratch_table} VALUES ('a name longer than ten')")
    # PostgreSQL refuses the old prepared statement ("cached plan must not change result type");
    # it is deallocated and prepared again, and every later execution works.
    for _ in range(2):
        assert sorted(select_prepared(sql)) == [("a name longer than ten",), ("first",)]


def test_the_prepared_statement_is_logged_with_its_text(user_a):
    # connection.queries and DEBUG's SQL log (and the benches that count statements by kind) read it.
    with CaptureQueriesContext(connection) as captured:
        user_with_hospital(user_id=user_a.pk, host="alpha.localhost")
    texts = [query["sql"] for query in captured.captured_queries]
    assert any(text and 'public."accounts_user"' in text for text in texts), texts
