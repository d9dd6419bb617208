#!/usr/bin/env bash
# Installs whatever is missing for ztw on a Debian machine, then builds it:
# Debian packages (libtorch, oneDNN headers, OpenBLAS, PyTorch for the parity fixtures and
# benchmarks, fonts for the PNG charts), npm packages, the native addon and
# the TypeScript. Fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libtorch-dev libdnnl-dev libopenblas0-pthread python3-torch fonts-dejavu-core chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# A user who builds against another libtorch (LIBTORCH=/path) does not need Debian's.
if [ -n "${LIBTORCH:-}" ]; then need=("${need[@]/libtorch-dev}"); fi
if [ "${#need[@]}" -gt 0 ] && [ -n "$(echo "${need[@]}" | tr -d ' ')" ]; then
  echo "ztw setup: installing Debian packages: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || [ ! -f build/Release/ztw_native.node ]; then
  echo "ztw setup: npm install" >&2
  # onnxruntime-node ships its CPU binaries; its install step would try a download.
  ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund
fi
node scripts/build-native.js
npx tsc -p tsconfig.json
