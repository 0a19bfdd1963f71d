#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need beyond cargo
# into ./.tools (ignored by git), then checks formatting and lints and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
tools="$root/.tools"
mkdir -p "$tools"

step() { printf '\n==> %s\n' "$*"; }

# --- tools the tests need (each install step is idempotent) -----------------------------------
# (tools are added here as the crates that need them arrive)

export PATH="$tools/bin:$PATH"

# --- checks -----------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test --workspace"
cargo test --workspace "$@"
