#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) for berth: system packages, npm packages, the build.
# Idempotent: safe to run again. Used by the README's two commands and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(runc tini busybox-static iproute2 nftables make gcc g++ libc6-dev python3 tar gzip bzip2 xz-utils bc procps openssl e2fsprogs git buildah podman)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: build"
npm run --silent build

ln -sf "$PWD/bin/berth" /usr/local/bin/berth
echo "setup: done ($(berth --version))"
