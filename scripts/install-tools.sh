#!/usr/bin/env bash
# Installs the check tools CI uses beyond the Rust toolchain, if missing, at pinned versions:
# cargo-deny (licences, bans, sources) and cargo-fuzz (libFuzzer on the nightly toolchain).
# Both build from crates.io with `cargo install --locked`, once per machine.
set -euo pipefail

CARGO_DENY_VERSION="0.20.2"
CARGO_FUZZ_VERSION="0.13.2"
bin="${CARGO_HOME:-$HOME/.cargo}/bin"

# Whether "$1 --version" names version $2.
installed() {
  [ -x "$bin/$1" ] && "$bin/$1" --version 2>/dev/null | grep -qF " $2"
}

if ! installed cargo-deny "$CARGO_DENY_VERSION"; then
  echo "install-tools: building cargo-deny $CARGO_DENY_VERSION (a few minutes, once)" >&2
  cargo install cargo-deny --version "=$CARGO_DENY_VERSION" --locked
fi
if ! installed cargo-fuzz "$CARGO_FUZZ_VERSION"; then
  echo "install-tools: building cargo-fuzz $CARGO_FUZZ_VERSION (a minute, once)" >&2
  cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked
fi
