#!/bin/sh
# Installs Debian's PgBouncer for the multi-host deployment (devtools/multihost.py: its test in make test's
# system tier, and make bench-multihost). Idempotent. The deployment also needs root for its network
# namespaces, so where this is not root (and has no passwordless sudo) it says so and leaves the test to skip,
# unless MULTIHOST_TEST_REQUIRED=1 (CI), where a missing PgBouncer is an error.
set -eu

PGBOUNCER=/usr/sbin/pgbouncer
if [ "$(id -u)" -ne 0 ] && [ ! -x "$PGBOUNCER" ] && [ "${MULTIHOST_TEST_REQUIRED:-}" != 1 ]; then
    echo "install-pgbouncer: not root: PgBouncer is not installed, the multi-host test will be skipped"
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" "$PGBOUNCER" pgbouncer
"$PGBOUNCER" --version | head -n 1
