"""Schema names that differ only in case are one name (django-tenants' rule), held by an index on UPPER.

django-tenants refuses such a name at onboarding with an `iexact` query; the unique index on
UPPER(schema_name) (tenants.models.Hospital) answers that query with one probe instead of reading every
hospital, and refuses the second of two concurrent onboardings that the query alone would let through.
"""

import pytest
from django.db import IntegrityError, connection, transaction

from tenants.models import Hospital


def test_a_schema_name_differing_only_in_case_is_refused_by_the_database():
    # bulk_create skips django-tenants' check (and the schema): what a concurrent onboarding would race past.
    Hospital.objects.bulk_create([Hospital(name="Case", slug="case-a", schema_name="h_case_x")])
    with pytest.raises(IntegrityError), transaction.atomic():
        Hospital.objects.bulk_create([Hospital(name="Case", slug="case-b", schema_name="H_CASE_X")])


def test_the_case_insensitive_check_probes_the_index():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a handful of rows: the planner would scan them anyway
    plan = Hospital.objects.filter(schema_name__iexact="h_some_name").explain()
    assert "tenants_hospital_schema_name_upper_uniq" in plan, plan
