#!/bin/sh
# Installs Debian's Chromium for the admin browser test (make browser-test).
# Playwright drives it; its own browser downloads are not used. Idempotent.
set -eu

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM is already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: error: $CHROMIUM is missing and there is no apt-get here;" \
         "install Chromium yourself and run make browser-test CHROMIUM=/path/to/chromium" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-browser: error: installing chromium needs root; run as root, allow passwordless sudo," \
         "or run: sudo apt-get install -y --no-install-recommends chromium" >&2
    exit 1
fi

install() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium
}
# Refresh the package lists only when needed: apt does not know chromium yet
# (a fresh machine), or the lists are stale and name files the mirror no longer has.
if ! apt-cache show chromium >/dev/null 2>&1; then
    $SUDO apt-get update -q
    install
elif ! install; then
    $SUDO apt-get update -q
    install
fi
/usr/bin/chromium --version  # where the package puts it
