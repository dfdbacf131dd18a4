#!/usr/bin/env bash
# deps.sh installs the local components winback's dev mode and tests use, on
# a Debian machine. It is idempotent: run it as often as you like; it only
# installs what is missing.
#
#   1. clickhouse-server, clickhouse-client, kcat and zookeeper from apt
#      (Debian's ClickHouse is 18.16; ZooKeeper 3.8, a Java program, is for
#      the replicated ClickHouse cluster test). Needs root, or sudo.
#   2. An outside Kafka client for the tests: KafkaJS and the Confluent
#      schema-registry client for Node.js, at the versions of
#      testenv/kafkajs/package-lock.json, into .cache/kafkajs (npm ci; about
#      16 MB).
#   3. libchdb.so (a modern ClickHouse as a library) from the npm package
#      `chdb`, into .cache/chdb. Its absolute path is printed last and written
#      to .cache/chdb/libpath, for the Makefile (CHDB_LIB_PATH).
#
# Only the tests use ZooKeeper, 2 and 3 (about 200 MB): `make run` calls
# this script with --run-only and skips them.
#
# Usage: deps.sh [--run-only] (--no-chdb is the same, its former name)
#
# Environment:
#   CHDB_DIR          where to install chdb (default: <repo>/.cache/chdb)
#   CHDB_NPM_VERSION  npm version of chdb to install (default: 3.4.0)
set -euo pipefail

with_tests=1
for arg in "$@"; do
	case $arg in
	--run-only | --no-chdb) with_tests=0 ;;
	*)
		printf 'deps: unknown argument %s (usage: deps.sh [--run-only])\n' "$arg" >&2
		exit 2
		;;
	esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chdb_dir=${CHDB_DIR:-$repo/.cache/chdb}
chdb_version=${CHDB_NPM_VERSION:-3.4.0}
apt_pkgs=(clickhouse-server clickhouse-client kcat)
if [ "$with_tests" = 1 ]; then
	apt_pkgs+=(zookeeper) # only the replicated-cluster test uses it
fi

log() { printf 'deps: %s\n' "$*" >&2; }
die() { printf 'deps: ERROR: %s\n' "$*" >&2; exit 1; }

# have reports whether a command exists, also looking in the sbin
# directories, which are not on a normal user's PATH (clickhouse-server
# lives in /usr/sbin).
have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

# present reports whether a package is there: its command, or (zookeeper,
# which has none on PATH) the installed package.
present() {
	have "$1" || dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# --- 1. apt packages -------------------------------------------------------
missing=()
for p in "${apt_pkgs[@]}"; do
	present "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	log "apt packages present: ${apt_pkgs[*]}"
else
	log "missing: ${missing[*]}"
	install_cmd="apt-get update && apt-get install -y --no-install-recommends ${apt_pkgs[*]}"
	command -v apt-get >/dev/null 2>&1 ||
		die "apt-get not found; install ${apt_pkgs[*]} with your package manager"
	if [ "$(id -u)" -eq 0 ]; then
		sudo=()
	elif command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		die "not root and no sudo; as root, run: $install_cmd"
	fi
	# clickhouse-server's postinst may try to start a service and print
	# "invoke-rc.d: policy-rc.d denied execution of start": that is fine,
	# winback starts its own server as a child process.
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update ||
		die "apt-get update failed; run: $install_cmd"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${apt_pkgs[@]}" ||
		die "apt-get install failed; run: $install_cmd"
	for p in "${apt_pkgs[@]}"; do
		present "$p" || die "$p still missing after apt-get install"
	done
	log "installed: ${missing[*]}"
fi

if [ "$with_tests" -eq 0 ]; then
	log "KafkaJS and chdb skipped (--run-only: only the tests need them)"
	exit 0
fi
need_npm() {
	command -v npm >/dev/null 2>&1 || die "npm not found; install nodejs and npm (apt-get install nodejs npm)"
}

# --- 2. the KafkaJS client from npm ----------------------------------------
# installed.lock is the lock file of the last npm ci that succeeded.
js_src=$repo/testenv/kafkajs
js_dir=$repo/.cache/kafkajs
if cmp -s "$js_src/package-lock.json" "$js_dir/installed.lock"; then
	log "KafkaJS client present in $js_dir"
else
	need_npm
	log "installing the KafkaJS client with npm ci into $js_dir"
	mkdir -p "$js_dir"
	rm -f "$js_dir/installed.lock"
	cp "$js_src/package.json" "$js_src/package-lock.json" "$js_dir/"
	npm ci --prefix "$js_dir" --no-audit --no-fund --loglevel=error ||
		die "npm ci --prefix $js_dir failed"
	cp "$js_src/package-lock.json" "$js_dir/installed.lock"
fi

# --- 3. libchdb.so from npm ------------------------------------------------

find_libchdb() {
	[ -d "$chdb_dir/node_modules" ] || return 0
	find "$chdb_dir/node_modules" -name libchdb.so -type f 2>/dev/null | sort | head -n 1
}

lib=$(find_libchdb)
if [ -z "$lib" ]; then
	need_npm
	mkdir -p "$chdb_dir"
	log "installing chdb@$chdb_version with npm into $chdb_dir (about 180 MB download)"
	# The library comes in an optional dependency
	# (@chdb/lib-linux-x64-gnu); npm skips a failing optional dependency
	# without failing, so we check for the file afterwards.
	npm install --prefix "$chdb_dir" --no-audit --no-fund --loglevel=error "chdb@$chdb_version" ||
		die "npm install --prefix $chdb_dir chdb@$chdb_version failed"
	lib=$(find_libchdb)
	[ -n "$lib" ] || die "npm installed chdb but no libchdb.so under $chdb_dir/node_modules (is @chdb/lib-$(uname -m)-gnu available for this platform?)"
fi

lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
printf '%s\n' "$lib" >"$chdb_dir/libpath"
log "libchdb.so: $lib (written to $chdb_dir/libpath)"
printf '%s\n' "$lib"
