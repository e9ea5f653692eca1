#!/usr/bin/env bash
# Checks the dependency graph against deny.toml: licences, banned crates, and sources.
# Advisories are not checked here (their database cannot be fetched on our CI machines); run
# `cargo deny check advisories` where it can be, and before every release.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Duplicate versions are warnings in deny.toml; only errors are printed.
cargo deny --log-level error check licenses bans sources
