#!/usr/bin/env bash
# The test command: installs the test database server if needed, then runs every test of the
# workspace against real servers. Set MONGODB_URI to run against a real MongoDB replica set too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-db.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo test --workspace "$@"
