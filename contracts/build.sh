#!/usr/bin/env bash
# Compiles every contracts/src/*.sol with solcjs (Standard JSON: optimizer on, 200 runs, EVM
# "cancun", no metadata hash, so the output depends only on the sources and the compiler) and
# writes one artifact per deployable contract: contracts/out/<Name>.json with
#   {"abi": [...], "bytecode": "0x…", "contractName": "<Name>", "deployedBytecode": "0x…"}
# pretty-printed with sorted keys. alloy's `sol!` reads these files.
#
#   contracts/build.sh           rebuild contracts/out
#   contracts/build.sh --check   exit 1 if contracts/out differs from a fresh build
#
# The compiler is $SOLCJS, else .tools/bin/solcjs (installed by ./test.sh). solcjs is a node
# script, so `node` is there wherever it runs; it also does the JSON post-processing here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
solcjs=${SOLCJS:-"$here/../.tools/bin/solcjs"}
check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: contracts/build.sh [--check]" >&2; exit 2 ;;
esac

[ -x "$solcjs" ] || command -v "$solcjs" >/dev/null 2>&1 || {
  echo "error: solcjs not found at $solcjs: run ./test.sh once (it installs it) or set SOLCJS" >&2
  exit 1
}
command -v node >/dev/null || { echo "error: node is needed (solcjs runs on it)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out"

# Standard JSON input: every source inline, under its file name.
node - "$here/src" > "$work/input.json" <<'EOF'
const fs = require("fs"), path = require("path");
const dir = process.argv[2];
const sources = {};
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(dir, f), "utf8") };
}
if (Object.keys(sources).length === 0) { console.error(`error: no .sol files in ${dir}`); process.exit(1); }
process.stdout.write(JSON.stringify({
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
}));
EOF

"$solcjs" --standard-json < "$work/input.json" > "$work/output.json"

# Report diagnostics (errors fail the build, warnings fail it too: the contracts stay clean),
# then write the artifacts of every contract that has bytecode (interfaces have none).
node - "$work/output.json" "$out" <<'EOF'
const fs = require("fs"), path = require("path");
const [file, outDir] = process.argv.slice(2);
// solcjs may print notes (">>> Cannot retry compilation with SMT…") before the JSON document
const text = fs.readFileSync(file, "utf8");
const start = text.search(/^\{/m);
if (start < 0) { console.error(`error: solcjs printed no JSON:\n${text}`); process.exit(1); }
const output = JSON.parse(text.slice(start));
let failed = false;
for (const e of output.errors || []) {
  console.error(e.formattedMessage || e.message);
  if (e.severity === "error" || e.severity === "warning") failed = true;
}
if (failed) { console.error("error: solc reported errors or warnings"); process.exit(1); }
const sorted = (v) =>
  Array.isArray(v) ? v.map(sorted)
  : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
  : v;
const seen = new Set();
for (const src of Object.keys(output.contracts || {}).sort()) {
  for (const [name, c] of Object.entries(output.contracts[src])) {
    if (!c.evm.bytecode.object) continue;
    if (seen.has(name)) { console.error(`error: two contracts named ${name}`); process.exit(1); }
    seen.add(name);
    const artifact = sorted({
      contractName: name,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    });
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
  }
}
if (seen.size === 0) { console.error("error: no contract produced bytecode"); process.exit(1); }
EOF

if $check; then
  if ! diff -rq "$out" "$here/out" >/dev/null 2>&1; then
    # names only: the artifacts hold one-line bytecode
    diff -rq "$out" "$here/out" | sed -e "s|$out|fresh build|g" -e "s|$here|contracts|g" >&2 || true
    echo "error: contracts/out is stale: run contracts/build.sh" >&2
    exit 1
  fi
  echo "contracts/out is up to date"
else
  mkdir -p "$here/out"
  rm -f "$here/out"/*.json
  cp "$out"/*.json "$here/out/"
  echo "wrote $(ls "$out" | tr '\n' ' ')to contracts/out"
fi
