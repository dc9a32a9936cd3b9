"""Login sessions as services (accounts/security/tokens.py): start, end, deadlines, purge."""

from datetime import UTC, datetime, timedelta

from django.test import RequestFactory
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import LoginSession
from accounts.security.tokens import FAMILY_CLAIM, session_deadline, session_start, sessions_end, sessions_purge
from tests.fast.conftest import make_staff


def test_a_session_starts_with_its_client_and_the_tokens_name_it(in_hospital):
    user = make_staff(in_hospital).user
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="x" * 600)
    token = session_start(user=user, request=request)
    session = LoginSession.objects.get(pk=token[FAMILY_CLAIM])
    assert session.user == user and session.ended_at is None
    assert session.client_address == "10.1.2.3" and session.user_agent == "x" * 500
    assert token.access_token[FAMILY_CLAIM] == session.pk
    assert OutstandingToken.objects.filter(jti=token["jti"], family__family=session.pk).exists()


def test_ending_one_or_all_but_one_blacklists_exactly_their_tokens(in_hospital):
    user = make_staff(in_hospital).user
    a, b, c = (session_start(user=user) for _ in range(3))
    ended, revoked = sessions_end(user_id=user.pk, only=a[FAMILY_CLAIM], reason="test")
    assert (ended, revoked) == ([a[FAMILY_CLAIM]], 1)
    ended, revoked = sessions_end(user_id=user.pk, keep=c[FAMILY_CLAIM], reason="test")
    assert (ended, revoked) == ([b[FAMILY_CLAIM]], 1)
    live = LoginSession.objects.filter(user=user, ended_at__isnull=True)
    assert list(live.values_list("pk", flat=True)) == [c[FAMILY_CLAIM]]
    assert sessions_end(user_id=user.pk, only=a[FAMILY_CLAIM], reason="again") == ([], 0)  # ends once


def test_the_deadline_is_the_earliest_limit_and_none_means_none():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    created, refresh = now - timedelta(hours=1), now + timedelta(days=7)
    args = {"now": now, "refresh_expires": refresh, "created": created}
    assert session_deadline(**args, idle_minutes=None, max_minutes=None) == refresh
    assert session_deadline(**args, idle_minutes=15, max_minutes=None) == now + timedelta(minutes=15)
    assert session_deadline(**args, idle_minutes=90, max_minutes=80) == created + timedelta(minutes=80)


def test_the_purge_drops_sessions_over_for_a_week_only(in_hospital):
    user = make_staff(in_hospital).user
    old_end, old_expiry, recent, live = (session_start(user=user)[FAMILY_CLAIM] for _ in range(4))
    long_ago = timezone.now() - timedelta(days=8)
    LoginSession.objects.filter(pk=old_end).update(ended_at=long_ago)
    LoginSession.objects.filter(pk=old_expiry).update(expires_at=long_ago)
    LoginSession.objects.filter(pk=recent).update(ended_at=timezone.now() - timedelta(days=1))
    assert sessions_purge() >= 2
    assert set(LoginSession.objects.filter(user=user).values_list("pk", flat=True)) == {recent, live}
