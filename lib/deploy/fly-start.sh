#!/bin/sh
# Starts one Grapevine instance on a Fly Machine; fly.REGION.toml runs it.
#
# Fly.io sets FLY_PRIVATE_IP (the Machine's address on the organization's
# private IPv6 network) and FLY_MACHINE_ID. Peers dial the Machine at its
# private address, so that is the URL it advertises. A Machine whose volume
# has no KV file yet gets the id REGION-MACHINE_ID; later starts keep the id
# stored in the KV file, even when the volume moves to a new Machine.
set -eu

if [ -z "${GRAPEVINE_ADVERTISE_URL:-}" ]; then
  if [ -z "${FLY_PRIVATE_IP:-}" ]; then
    echo "fly-start.sh: FLY_PRIVATE_IP is not set; set GRAPEVINE_ADVERTISE_URL or run on a Fly Machine" >&2
    exit 1
  fi
  GRAPEVINE_ADVERTISE_URL="http://[${FLY_PRIVATE_IP}]:${GRAPEVINE_PORT:-8000}"
  export GRAPEVINE_ADVERTISE_URL
fi

if [ -z "${GRAPEVINE_ID:-}" ] && [ -n "${FLY_MACHINE_ID:-}" ] &&
  [ -n "${GRAPEVINE_KV_PATH:-}" ] && [ ! -e "${GRAPEVINE_KV_PATH}" ]; then
  GRAPEVINE_ID="${GRAPEVINE_REGION:-fly}-${FLY_MACHINE_ID}"
  export GRAPEVINE_ID
fi

exec deno run --allow-net --allow-read --allow-write --allow-env main.ts serve
