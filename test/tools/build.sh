#!/usr/bin/env bash
# Builds the pinned test-stack and developer tools from the Go module proxy into
# a cache outside the repository, keyed by a hash of the pins of every module
# here but dev/ (etcd, kube, vault, helm):
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/lanyard/tools/<hash>/bin
#
# The developer tools (dev/: buf, protoc plugins, golangci-lint) live in the
# same directory but are keyed by a stamp of their own pins, so that bumping
# one of them rebuilds the four developer tools (a few minutes), not the
# ~20-minute stack.
#
# LANYARD_TOOLS_BIN overrides that directory. A binary already present is not
# rebuilt, so a second run with a complete cache does nothing.
#
# Usage: build.sh dir                  print the bin directory
#        build.sh [stack|helm|dev|all] build a group (default: all)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# A relative override means relative to where the caller stands, not to here.
if [ -n "${LANYARD_TOOLS_BIN:-}" ]; then
	LANYARD_TOOLS_BIN=$(mkdir -p "$LANYARD_TOOLS_BIN" && cd "$LANYARD_TOOLS_BIN" && pwd)
fi
cd "$here"

# pins_hash [DIR...] hashes the pins of the given module directories, by
# default of every one but dev/.
pins_hash() {
	local f dirs=("$@")
	if [ ${#dirs[@]} -eq 0 ]; then
		mapfile -t dirs < <(LC_ALL=C ls -1d */ | sed 's|/$||' | grep -vx dev)
	fi
	for f in $(for d in "${dirs[@]}"; do ls -1 "$d"/go.mod "$d"/go.sum "$d"/tools.go; done | LC_ALL=C sort); do
		printf '%s\n' "$f"
		cat "$f"
	done | sha256sum | cut -c1-16
}

bin_dir() {
	if [ -n "${LANYARD_TOOLS_BIN:-}" ]; then
		printf '%s\n' "$LANYARD_TOOLS_BIN"
		return
	fi
	printf '%s/lanyard/tools/%s/bin\n' "${XDG_CACHE_HOME:-$HOME/.cache}" "$(pins_hash)"
}

# build MODULE_DIR NAME PACKAGE builds PACKAGE of the module in MODULE_DIR as NAME.
build() {
	local mod=$1 name=$2 pkg=$3 out start tmp
	out="$(bin_dir)/$name"
	if [ -x "$out" ]; then
		return
	fi
	echo "tools: building $name from $pkg (a cold build of every tool takes about 20-25 minutes on 2 cores)" >&2
	start=$(date +%s)
	# A private temporary name, so that two builds at once cannot clobber
	# each other's output; the rename makes the binary appear whole.
	tmp="$out.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	(cd "$here/$mod" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp" "$pkg")
	mv "$tmp" "$out"
	trap - EXIT
	echo "tools: built $name in $(($(date +%s) - start))s" >&2
}

stack() {
	build etcd etcd go.etcd.io/etcd/server/v3
	build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
	build kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
	build kube kubectl k8s.io/kubernetes/cmd/kubectl
	build vault vault github.com/hashicorp/vault
}

helm_tools() {
	build helm helm helm.sh/helm/v4/cmd/helm
}

dev() {
	local stamp
	stamp="$(bin_dir)/.dev-$(pins_hash dev)"
	if [ ! -e "$stamp" ]; then
		# Other pins than the ones these binaries were built from.
		rm -f "$(bin_dir)"/{buf,protoc-gen-go,protoc-gen-go-grpc,golangci-lint} "$(bin_dir)"/.dev-*
	fi
	build dev buf github.com/bufbuild/buf/cmd/buf
	build dev protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	build dev protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	build dev golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	touch "$stamp"
}

case "${1:-all}" in
dir) bin_dir ;;
stack) mkdir -p "$(bin_dir)" && stack ;;
helm) mkdir -p "$(bin_dir)" && helm_tools ;;
dev) mkdir -p "$(bin_dir)" && dev ;;
all) mkdir -p "$(bin_dir)" && stack && helm_tools && dev ;;
*)
	echo "usage: $0 [dir|stack|helm|dev|all]" >&2
	exit 2
	;;
esac
