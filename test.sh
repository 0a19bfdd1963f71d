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

# lit-actions: the real Deno runtime (npm package `deno`, which ships the binary through an
# optional platform package) and ipfs-only-hash, the independent CIDv0 implementation.
deno_version=2.9.6
ipfs_only_hash_version=4.0.0
mkdir -p "$tools/bin"
if ! "$tools/bin/deno" --version 2>/dev/null | grep -q "deno $deno_version" \
   || [ ! -f "$tools/npm/node_modules/ipfs-only-hash/package.json" ]; then
  step "install deno@$deno_version and ipfs-only-hash@$ipfs_only_hash_version into .tools"
  command -v npm >/dev/null || { echo "error: npm is needed to install deno and ipfs-only-hash (apt-get install npm)" >&2; exit 1; }
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" \
    "deno@$deno_version" "ipfs-only-hash@$ipfs_only_hash_version" >/dev/null
  deno_bin=$(find "$tools/npm/node_modules/@deno" -type f -name deno -perm -u+x 2>/dev/null | head -n1)
  [ -n "$deno_bin" ] || { echo "error: npm installed no deno binary for this platform" >&2; exit 1; }
  ln -sf "$deno_bin" "$tools/bin/deno"
  "$tools/bin/deno" --version >/dev/null
fi

# lit-actions: the `ethers` v5 global of Lit Actions, evaluated from the npm package's own
# self-contained browser bundle (dist/ethers.umd.min.js); found by lit-actions at this path or
# through LIT_ETHERS, never copied into the repository.
ethers_version=5.7.2
ethers_bundle="$tools/npm-ethers/node_modules/ethers/dist/ethers.umd.min.js"
if ! grep -q "\"ethers/$ethers_version\"" "$ethers_bundle" 2>/dev/null; then
  step "install ethers@$ethers_version into .tools"
  command -v npm >/dev/null || { echo "error: npm is needed to install ethers (apt-get install npm)" >&2; exit 1; }
  npm install --silent --no-audit --no-fund --prefix "$tools/npm-ethers" "ethers@$ethers_version" >/dev/null
  [ -f "$ethers_bundle" ] || { echo "error: ethers@$ethers_version has no dist/ethers.umd.min.js" >&2; exit 1; }
fi

# lit-node: a real EVM node (anvil, npm package @foundry-rs/anvil, which ships the binary through
# an optional platform package) and the Solidity compiler (solcjs) for the test contracts.
anvil_version=1.7.1
solc_version=0.8.28
if ! "$tools/bin/anvil" --version >/dev/null 2>&1 \
   || ! "$tools/bin/solcjs" --version 2>/dev/null | grep -q "^$solc_version"; then
  step "install anvil@$anvil_version and solc@$solc_version into .tools"
  command -v npm >/dev/null || { echo "error: npm is needed to install anvil and solc (apt-get install npm)" >&2; exit 1; }
  npm install --silent --no-audit --no-fund --prefix "$tools/npm-evm" \
    "@foundry-rs/anvil@$anvil_version" "solc@$solc_version" >/dev/null
  anvil_bin=$(find "$tools/npm-evm/node_modules/@foundry-rs" -type f -name anvil -perm -u+x 2>/dev/null | head -n1)
  [ -n "$anvil_bin" ] || { echo "error: npm installed no anvil binary for this platform" >&2; exit 1; }
  ln -sf "$anvil_bin" "$tools/bin/anvil"
  ln -sf "$tools/npm-evm/node_modules/.bin/solcjs" "$tools/bin/solcjs"
  "$tools/bin/anvil" --version >/dev/null
fi

export PATH="$tools/bin:$PATH"

# --- checks -----------------------------------------------------------------------------------
step "contracts/out is up to date"
SOLCJS="$tools/bin/solcjs" contracts/build.sh --check

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test --workspace"
cargo test --workspace "$@"
