#!/usr/bin/env bash
# The project's gates, in the order a failure is cheapest to see: formatting, lints, tests.
# This is the README's test command and what CI runs (.ci/run). It installs what the tests
# need from Debian's packages when it is missing, so it passes on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start themselves; installed only when absent.
apt_install() {
    echo "installing $* from Debian's packages"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@"
}
apt_install_missing() {
    local missing=()
    for pair in "$@"; do
        local command=${pair%%:*} package=${pair##*:}
        command -v "$command" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}
apt_install_missing redis-server:redis-server promtool:prometheus chromium:chromium
# The control room's screenshots show Chinese station names: Chromium needs a CJK font.
fc-list :lang=zh 2>/dev/null | grep -q . || apt_install fonts-wqy-microhei

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
