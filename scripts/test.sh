#!/usr/bin/env bash
# Runs pubgate's whole test suite, first installing what the tests need when
# it is missing: gcc (for -race), redis-server (also run as Sentinel, with
# --sentinel, so no redis-sentinel package) and redis-cli (which creates the
# test clusters), Debian's python3-redis, Node.js with npm, the ioredis
# example's packages, HAProxy (the load balancer in front of two nodes), and
# golangci-lint at the version pinned below (built with the Go toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
/usr/bin/python3 -c 'import redis' 2>/dev/null || missing+=(python3-redis)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v haproxy >/dev/null || missing+=(haproxy)
if ((${#missing[@]})); then
	echo "installing test dependencies: ${missing[*]}"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
npm ci --prefix examples/clients/node --no-audit --no-fund --loglevel=error

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
go vet ./...
# The linters and their settings are in .golangci.yml.
golangci_lint_version=v2.15.0
lint="$(go env GOPATH)/bin/golangci-lint"
if ! "$lint" version 2>/dev/null | grep -q "version ${golangci_lint_version#v} "; then
	echo "installing golangci-lint $golangci_lint_version"
	go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$golangci_lint_version"
fi
"$lint" run ./...
go test -race -count=1 ./...
# A short run of the benchmark comparison (no thresholds): it must keep
# working, and every message must arrive.
go run ./cmd/pubgate bench compare --smoke
