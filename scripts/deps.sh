#!/usr/bin/env bash
# Installs what the tests need when it is missing: kcat (librdkafka's CLI) for
# the client round trips, iproute2 (ip, tc) for the network-namespace fault
# tests. Runs as root on a fresh Debian machine; elsewhere it says what to
# install.
set -euo pipefail

need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
{ command -v ip && command -v tc; } >/dev/null 2>&1 || need+=(iproute2)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing: ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
