#!/usr/bin/env bash
# The main job on a fresh machine: installs nftables and conntrack if needed, builds, then runs the
# frontend / backend tutorial live, exactly as a user types it: `palisade sandbox up`, then the real kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v nft >/dev/null || ! command -v conntrack >/dev/null; then
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables conntrack iproute2 >/dev/null
fi
cargo build --release -q -p palisade-cli
exec $SUDO env PATH="$PWD/target/release:$PATH" bash examples/tutorials/frontend-backend/tutorial.sh
