#!/usr/bin/env bash
# The project's gates, in the order a failure is cheapest to see: formatting, lints, tests.
# This is the README's test command and what CI runs (.ci/run). It installs what the tests
# need from Debian's packages when it is missing, so it passes on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need, as `command:package` (or `/path/of/a/file:package`);
# installed only when absent.
apt_install() {
    echo "installing $* from Debian's packages"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@"
}
apt_install_missing() {
    local missing=()
    for pair in "$@"; do
        local need=${pair%%:*} package=${pair##*:}
        if [[ $need == /* ]]; then
            [ -e "$need" ] || missing+=("$package")
        else
            command -v "$need" >/dev/null 2>&1 || missing+=("$package")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}
# The simulator's charts draw their text with DejaVu Sans (no system font lookup); the control
# room's screenshots show Chinese station names, so Chromium needs a CJK font.
apt_install_missing redis-server:redis-server promtool:prometheus chromium:chromium \
    /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core \
    /usr/share/fonts/truetype/wqy/wqy-microhei.ttc:fonts-wqy-microhei

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
# The HTTP suites once more with every test app on a redis-server of its own (started and
# stopped by the tests), so the contract holds on both backends.
echo "== cargo test: the HTTP suites on Redis"
DISPATCH_TEST_STORE=redis cargo test -p dispatch --locked --test api --test reports --test promtool
