#!/bin/sh
# Installs the local OpenID Provider of the SSO tests and the local set-up (devtools/idp/: panva's oidc-provider
# from the npm registry, exactly as package-lock.json pins it). Needs Node.js 20 or newer: where `node` is
# missing, Debian's nodejs and npm packages are apt-installed (as root). Idempotent: `npm ci` runs only when the
# lock file changed since the last install.
set -eu

IDP="$(cd "$(dirname "$0")/../devtools/idp" && pwd)"
if ! command -v node >/dev/null 2>&1; then
    sh "$(dirname "$0")/apt-install.sh" /usr/bin/node nodejs
fi
if ! command -v npm >/dev/null 2>&1; then
    sh "$(dirname "$0")/apt-install.sh" /usr/bin/npm npm
fi
STAMP="$IDP/node_modules/.installed-lock"
if [ -f "$STAMP" ] && cmp -s "$STAMP" "$IDP/package-lock.json"; then
    echo "install-idp: devtools/idp is up to date"
    exit 0
fi
(cd "$IDP" && npm ci --no-audit --no-fund)
cp "$IDP/package-lock.json" "$STAMP"
echo "install-idp: oidc-provider $(node -p "require('$IDP/node_modules/oidc-provider/package.json').version") installed"
