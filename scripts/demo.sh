#!/usr/bin/env bash
# Runs the sandbox demo on a fresh machine: installs nftables if needed, builds, runs `palisade demo` as root.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v nft >/dev/null; then
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables conntrack iproute2 >/dev/null
fi
cargo build --release -q -p palisade-cli
exec $SUDO ./target/release/palisade demo
