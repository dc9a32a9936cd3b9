"""References from a hospital's schema to the public schema: Django relations without a database constraint.

PostgreSQL enforces a foreign key with triggers on the table it points at. A constraint from every
hospital's schema to `public.accounts_user` (6 per hospital: staff, invitations, SSO identities and the
guardian grants) would put 12 triggers per hospital on that one table: 12,000 at 1,000 hospitals. Every
INSERT or UPDATE of an account then copies and scans all of them, every DELETE runs a check in every
hospital's schema at commit (6,000 queries), and every database session reloads them after each new
hospital (ARCHITECTURE.md "References across schemas"). `auth_permission`, `auth_group` and
`django_content_type` would collect the same.

So these relations keep Django's side, the joins and `on_delete` (PROTECT, CASCADE), which the ORM
carries out in Python in the schema the connection is on, and drop the constraint. That holds because
an account belongs to one hospital and is deleted only in its hospital's schema (accounts/services.py,
tenants/services.py). The backend's schema editor (tenants/postgresql_backend/schema.py) creates none for
guardian's own generic tables or in replayed history either; tests/test_cross_schema_references.py fails if
any constraint across schemas comes back.
"""

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class HospitalUserObjectPermission(UserObjectPermissionBase):
    """guardian's per-user grant on a hospital's record (subclasses add `content_object`), without constraints
    on the public user and permission rows."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_constraint=False)
    permission = models.ForeignKey(Permission, on_delete=models.CASCADE, db_constraint=False)

    class Meta(UserObjectPermissionBase.Meta):
        abstract = True


class HospitalGroupObjectPermission(GroupObjectPermissionBase):
    """guardian's per-group grant on a hospital's record, without constraints on the public group and
    permission rows."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, db_constraint=False)
    permission = models.ForeignKey(Permission, on_delete=models.CASCADE, db_constraint=False)

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = True
