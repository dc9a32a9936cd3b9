#!/bin/sh
# Installs Debian's Chromium for the admin browser test (make browser-test).
# Playwright drives it; its own browser downloads are not used. Idempotent.
# Elsewhere than Debian: install Chromium yourself and run make browser-test CHROMIUM=/path/to/chromium.
set -eu

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
sh "$(dirname "$0")/apt-install.sh" "$CHROMIUM" chromium
"$CHROMIUM" --version  # where the package puts it
