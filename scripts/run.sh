#!/usr/bin/env bash
# Runs walkerd. Without MONGODB_URI it uses the embedded database (secantusd-rs), installing it
# first if it is missing; data goes to ./data (WALKERD_DATA_DIR). Extra arguments go to walkerd.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MONGODB_URI:-}" ]; then
  scripts/install-db.sh
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
exec cargo run --release -p walkerd-server --bin walkerd -- "$@"
