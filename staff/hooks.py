"""What happens elsewhere when a staff member's role changes, without `staff` importing the apps above it.

`hospitals` sits above `staff` (it holds patients, care teams and their guardian grants), yet a role change
must move the grants it keeps, and may be refused by facts only it knows (receptionists sit on no care team).
So `hospitals` registers a hook here from its AppConfig.ready(), and `staff.services.staff_member_update` runs
every registered hook inside the role change's transaction.

The contract of a hook, `hook(*, staff, old_role) -> None`:
- it is called once per role change (never when the role stays), with `staff.role` already the new role and
  not yet saved, inside `transaction.atomic()`, in the hospital's schema;
- it refuses the change by raising `core.api.ServiceError`: the whole change is rolled back, whatever any
  hook did before, and the error is the API's answer (a 400 with its code);
- otherwise it makes its effects in the same transaction, so they commit or roll back with the role;
- hooks run in the order they were registered, before `staff`'s own checks, so that when several refusals
  apply the first hook's is the one reported.
A plain registry rather than a Django signal: one explicit call with a typed signature, exceptions that are
meant to propagate, and no weak references to lose a receiver.
"""

from __future__ import annotations

from typing import Protocol

from staff.models import StaffMember


class RoleChangeHook(Protocol):
    def __call__(self, *, staff: StaffMember, old_role: str) -> None: ...


_role_change_hooks: list[RoleChangeHook] = []


def role_change_hook_register(hook: RoleChangeHook) -> RoleChangeHook:
    """Registers `hook` for every role change (once: registering it again changes nothing)."""
    if hook not in _role_change_hooks:
        _role_change_hooks.append(hook)
    return hook


def role_change_hooks_run(*, staff: StaffMember, old_role: str) -> None:
    """Runs the registered hooks (see the module's contract); the caller holds the transaction."""
    for hook in list(_role_change_hooks):
        hook(staff=staff, old_role=old_role)


def role_change_hooks() -> tuple[RoleChangeHook, ...]:
    """The registered hooks, in order (for tests and checks)."""
    return tuple(_role_change_hooks)
