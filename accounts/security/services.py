"""What every failed or refused password check leaves behind, and password checks outside a login.

Every path that checks a password calls these: the API login and the admin's login form (both through
`backends.HospitalEmailBackend`) and the old password of a password change.
"""

from __future__ import annotations

import logging

from accounts.addresses import canonical_email_or_none
from accounts.security.attempts import LoginRefused, Reservation, attempt_reserve
from audit.models import AuditEvent
from audit.services import audit_record

logger = logging.getLogger(__name__)


def login_failed(
    *, email: str, reservation: Reservation | None = None, refused: LoginRefused | None = None, via: str = "login"
) -> None:
    """A password check failed (`reservation`, the attempt it spent) or was refused unchecked (`refused`).

    A checked and wrong password is one `login_failed` event in the trail of the schema it was tried at; if
    it spent a budget to its limit, the lock begins with it and the event says so (`detail.lock`: which
    budget, until when). Refusals during a lock are not recorded one by one (a guesser would fill the trail
    with them, and each is a consequence of the lock already recorded): they go to the log only.
    """
    typed = canonical_email_or_none(email) or email.strip()[:254]  # the address, never the password
    if refused is not None:
        logger.info("Password check refused (%s) for %s via %s", refused.default_code, typed, via)
        return
    detail: dict = {"email": typed}
    if via != "login":
        detail["via"] = via
    if reservation is not None and (spent := reservation.spent()):
        detail["lock"] = {
            "budgets": [budget.kind for budget in spent],
            "until": max(budget.expires_at for budget in spent).isoformat(),
        }
    audit_record(action=AuditEvent.Action.LOGIN_FAILED, target_type="accounts.user", detail=detail)


def password_check(*, request, user, password: str, via: str) -> bool:
    """Checks the password of `user` (already authenticated by a token) on the same budget as logging in.

    A stolen access token must not let its holder guess the password at will: the attempt is reserved
    before the check, and past the budget LoginRefused (429) is raised without checking.
    """
    try:
        reservation = attempt_reserve(request, user.email)
    except LoginRefused as refused:
        login_failed(email=user.email, refused=refused, via=via)
        raise
    if user.check_password(password):
        reservation.refund()
        return True
    login_failed(email=user.email, reservation=reservation, via=via)
    return False
