"""Multi-factor login: TOTP authenticators, recovery codes and the second step of a login (README
"Multi-factor login"). `services` holds the operations, `crypto` how secrets are kept at rest."""
