#!/bin/sh
# Installs a Debian package unless its program is already there: apt-install.sh PROGRAM PACKAGE.
# As root, or with passwordless sudo; idempotent. scripts/install-*.sh call it.
set -eu

PROGRAM=$1
PACKAGE=$2
if [ -x "$PROGRAM" ]; then
    echo "apt-install: $PROGRAM is already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-install: error: $PROGRAM is missing and there is no apt-get here; install $PACKAGE yourself" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "apt-install: error: installing $PACKAGE needs root; run as root, allow passwordless sudo," \
         "or run: sudo apt-get install -y --no-install-recommends $PACKAGE" >&2
    exit 1
fi

install() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$PACKAGE"
}
# Refresh the package lists only when needed: apt does not know the package yet
# (a fresh machine), or the lists are stale and name files the mirror no longer has.
if ! apt-cache show "$PACKAGE" >/dev/null 2>&1; then
    $SUDO apt-get update -q
    install
elif ! install; then
    $SUDO apt-get update -q
    install
fi
