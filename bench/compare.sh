#!/usr/bin/env bash
# Runs the comparison of BENCHMARKS.md: Redis alone, Redis with TLS + ACL,
# and pubgate with TLS, passwords, the example policy and audit, on
# loopback. Arguments go to `pubgate bench compare` (--smoke, --scaling,
# --repeat N, --out DIR, ...). Needs Go and redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/pubgate" ./cmd/pubgate
"$bin/pubgate" bench compare "$@"
