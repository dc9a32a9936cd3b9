from celery import shared_task

from accounts.mfa.services import mfa_challenges_purge
from accounts.security.attempts import counters_purge
from accounts.security.tokens import sessions_purge
from accounts.services import registrations_expired_purge


@shared_task
def login_counters_purge_task() -> int:
    """Drops the login budget's counters whose window has ended (an expired counter counts as zero anyway),
    and the second-step tokens past their lifetime."""
    return counters_purge() + mfa_challenges_purge()


@shared_task
def registrations_expired_purge_task() -> int:
    """Frees the addresses of self-registrations left unverified past the verification window."""
    return registrations_expired_purge()


@shared_task
def sessions_purge_task() -> int:
    """Drops the login sessions over for a week (their tokens were refused all along)."""
    return sessions_purge()
