"""The password hasher: Argon2id at the cheapest of OWASP's equivalent minimum settings, measured here.

OWASP's Password Storage Cheat Sheet gives five equivalent minimums for Argon2id, all with parallelism 1:
m=46 MiB t=1, m=19 MiB t=2, m=12 MiB t=3, m=9 MiB t=4, m=7 MiB t=5. Measured on the 2-core reference
machine (CPU time per hash, median of 40, interleaved): 44.8, 18.6, 15.3, 14.7 and 14.2 ms; Django's
default (m=100 MiB, t=2, p=8) took 279 ms of wall time. The last is kept (README "Performance").
The algorithm name stays "argon2", so every stored Argon2 hash still verifies whatever its parameters,
and Django re-hashes it with these at the next successful login (`must_update`).
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    time_cost = 5
    memory_cost = 7 * 1024  # KiB
    parallelism = 1
