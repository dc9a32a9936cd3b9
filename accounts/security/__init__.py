"""The login and abuse policy, one module per concern.

- client address: `core.http.client_ip` (in the leaf package, because the logs and the audit trail, below
  accounts, record the same address the limits count)
- `throttles`: rate limits of the endpoints that mail or hash without a login, on an injectable counter
- `attempts`: the login attempt budget (lockout), reserved in PostgreSQL before any password is checked
- `backends`: the one place a login password is checked; `middleware`: its refusal outside DRF
- `tokens`: refresh token families: rotation, the reuse grace window, reuse detection, revocation
"""
