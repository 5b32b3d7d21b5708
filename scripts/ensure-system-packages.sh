#!/usr/bin/env bash
# Install the Debian packages the test suite needs, if they are missing:
#   - chromium    (Playwright end-to-end tests drive /usr/bin/chromium)
#   - postgresql  (scripts/pg-throwaway.sh needs initdb/pg_ctl)
#
# Idempotent: does nothing (and does not touch apt) when all is present.
# Runs `apt-get update` once, only when something has to be installed.
#
# Environment:
#   ENSURE_DRY_RUN=1       print what would be done, change nothing
#   ENSURE_CHROMIUM=path   binary whose presence means "chromium installed"
#                          (default /usr/bin/chromium; for testing the logic)
#   ENSURE_PG_ROOT=dir     where to look for <version>/bin/initdb
#                          (default /usr/lib/postgresql; for testing the logic)
set -euo pipefail

log() { printf 'ensure-system-packages: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

dry_run=${ENSURE_DRY_RUN:-0}
chromium_bin=${ENSURE_CHROMIUM:-/usr/bin/chromium}
pg_root=${ENSURE_PG_ROOT:-/usr/lib/postgresql}

have_initdb() {
    local f
    for f in "$pg_root"/*/bin/initdb; do
        [ -x "$f" ] && return 0
    done
    return 1
}

missing=()
if [ -x "$chromium_bin" ]; then
    log "chromium: present ($chromium_bin)"
else
    log "chromium: missing ($chromium_bin not found)"
    missing+=(chromium)
fi
if have_initdb; then
    log "postgresql: present ($(ls -d "$pg_root"/*/bin/initdb | sort -V | tail -n1))"
else
    log "postgresql: missing (no $pg_root/*/bin/initdb)"
    missing+=(postgresql)
fi

if [ ${#missing[@]} -eq 0 ]; then
    log "nothing to install"
    exit 0
fi

# Become root for apt-get if needed.
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        die "need to install ${missing[*]} but not root and no sudo available"
    fi
fi

run() {
    log "+ $*"
    if [ "$dry_run" = 1 ]; then
        return 0
    fi
    "$@"
}

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=300)

log "installing: ${missing[*]}"
run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update \
    || die "apt-get update failed"
run "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"

if [ "$dry_run" = 1 ]; then
    log "dry run: nothing installed"
    exit 0
fi

# Verify the result, loudly.
[ -x "$chromium_bin" ] || die "chromium still missing after install ($chromium_bin)"
have_initdb || die "postgresql still missing after install (no $pg_root/*/bin/initdb)"
log "done"
