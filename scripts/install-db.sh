#!/usr/bin/env bash
# Installs the MongoDB-compatible server that tests and the zero-setup run use, if missing.
# secantusd-rs (crate secantus-mdb, GPL-2.0) runs as a separate process and never links into
# walkerd. Building it needs cmake; it declares a newer rust-version than this toolchain but builds
# with --ignore-rust-version.
set -euo pipefail

SECANTUS_VERSION="0.5.3-beta.196"

if command -v secantusd-rs >/dev/null 2>&1 || [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/secantusd-rs" ]; then
  exit 0
fi

if ! command -v cmake >/dev/null 2>&1; then
  echo "install-db: installing cmake" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq cmake >/dev/null
fi

echo "install-db: building secantusd-rs $SECANTUS_VERSION (a few minutes, once)" >&2
cargo install secantus-mdb --version "=$SECANTUS_VERSION" --locked --ignore-rust-version
