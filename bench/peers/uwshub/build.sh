#!/usr/bin/env bash
# build.sh — compile uwshub (uwshub.cpp) against uWebSockets and uSockets
# sources: plain epoll (LIBUS_NO_SSL), no zlib, -O2.
#
#   bench/peers/uwshub/build.sh [--uws-src DIR] [--usockets-src DIR] [--out DIR]
# (UWS_BACKLOG: listen backlog, default 65535, capped by the kernel at somaxconn)
#
# Sources, in this order:
#   --uws-src / UWS_SRC             uWebSockets checkout or bare git dir
#   --usockets-src / USOCKETS_SRC   uSockets checkout or bare git dir
#                                   (default: <uws>/uSockets if populated)
#   /work/.mirror/uNetworking+{uWebSockets,uSockets}/repo (bare mirrors), when present
#   git clone --depth 1 from github.com/uNetworking (where the network allows)
# Output: <out>/uwshub, where out defaults to
# ${XDG_CACHE_HOME:-~/.cache}/fanwire/uwshub/<hash of sources + adapter>;
# an existing binary there is reused. The path of the binary is the last
# line of stdout. Exit 3: no sources found.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
uws_src=${UWS_SRC:-}
us_src=${USOCKETS_SRC:-}
out=
while [ $# -gt 0 ]; do
	case $1 in
	--uws-src) uws_src=$2; shift 2 ;;
	--usockets-src) us_src=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -e/{/^#/p}' "$0"; exit 0 ;;
	*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

mirror=/work/.mirror/uNetworking+
work=$(mktemp -d "${TMPDIR:-/tmp}/uwshub-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# materialize NAME SRC: a directory with NAME's sources in $work/NAME; echoes
# a version string (commit or content hash) for the cache key.
materialize() {
	local name=$1 src=$2 dst=$work/$1
	if [ -z "$src" ] && [ -d "${mirror}$name/repo" ]; then
		src=${mirror}$name/repo
	fi
	if [ -z "$src" ]; then
		if git clone -q --depth 1 "https://github.com/uNetworking/$name.git" "$dst" 2>"$work/clone-$name.err"; then
			git -C "$dst" rev-parse HEAD
			return
		fi
		echo "build.sh: no $name sources: set --uws-src/--usockets-src (UWS_SRC/USOCKETS_SRC) to a checkout; git clone failed: $(tail -1 "$work/clone-$name.err")" >&2
		exit 3
	fi
	if [ ! -d "$src" ]; then
		echo "build.sh: $name sources: $src is not a directory" >&2
		exit 3
	fi
	if [ -f "$src/HEAD" ] && [ -d "$src/objects" ]; then # a git dir (the mirrors are bare)
		mkdir -p "$dst"
		git --git-dir="$src" archive HEAD | tar -x -C "$dst"
		git --git-dir="$src" rev-parse HEAD
	else
		cp -r "$src/." "$dst"
		if git -C "$src" rev-parse HEAD 2>/dev/null; then :; else
			find "$dst/src" -type f | sort | xargs cat | sha256sum | cut -c1-16
		fi
	fi
}

uws_ver=$(materialize uWebSockets "$uws_src")
[ -f "$work/uWebSockets/src/App.h" ] || { echo "build.sh: uWebSockets sources have no src/App.h" >&2; exit 3; }
if [ -z "$us_src" ] && [ -f "$work/uWebSockets/uSockets/src/libusockets.h" ]; then
	us_dir=$work/uWebSockets/uSockets
	us_ver=bundled
else
	us_ver=$(materialize uSockets "$us_src")
	us_dir=$work/uSockets
fi
[ -f "$us_dir/src/libusockets.h" ] || { echo "build.sh: uSockets sources have no src/libusockets.h" >&2; exit 3; }

# The one change to upstream: uSockets listens with a fixed backlog of 512;
# every other server here (gnet, net/http) asks for net.core.somaxconn, and
# under an unthrottled storm 512 means dropped SYNs and 1 s retries. The
# kernel caps the value at somaxconn. UWS_BACKLOG=512 keeps upstream's.
backlog=${UWS_BACKLOG:-65535}
case $backlog in *[!0-9]*|'') echo "build.sh: UWS_BACKLOG must be a number" >&2; exit 2 ;; esac
grep -q 'listen(listenFd, 512)' "$us_dir/src/bsd.c" || echo "build.sh: warning: uSockets' listen(listenFd, 512) not found; backlog left as is" >&2
sed -i "s/listen(listenFd, 512)/listen(listenFd, $backlog)/" "$us_dir/src/bsd.c"

key=$( (echo "$uws_ver $us_ver backlog $backlog"; cat "$here/uwshub.cpp" "$0") | sha256sum | cut -c1-16)
if [ -z "$out" ]; then
	out=${XDG_CACHE_HOME:-$HOME/.cache}/fanwire/uwshub/$key
fi
if [ -x "$out/uwshub" ] && [ "$(cat "$out/uwshub.key" 2>/dev/null)" = "$key" ]; then
	echo "$out/uwshub"
	exit 0
fi
mkdir -p "$out" "$work/obj"

cc=${CC:-gcc}
cxx=${CXX:-g++}
flags="-O2 -DLIBUS_NO_SSL -DUWS_NO_ZLIB"
echo "build.sh: compiling uSockets ($us_ver) and uwshub on uWebSockets ($uws_ver)" >&2
(cd "$work/obj" && $cc $flags -std=c11 -I"$us_dir/src" -c "$us_dir"/src/*.c "$us_dir"/src/eventing/*.c "$us_dir"/src/crypto/*.c)
$cxx $flags -std=c++20 -I"$work/uWebSockets/src" -I"$us_dir/src" "$here/uwshub.cpp" "$work"/obj/*.o -pthread -o "$out/uwshub.tmp"
mv "$out/uwshub.tmp" "$out/uwshub"
echo "$key" >"$out/uwshub.key"
echo "$out/uwshub"
