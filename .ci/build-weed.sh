#!/bin/sh
# build-weed.sh VERSION OUT: build SeaweedFS's weed command (a real S3 server
# for the cache tests) from a writable copy of its module source. Its go.mod
# carries a replace directive, which `go install pkg@version` refuses, and
# -mod=mod lets the build settle go.sum in the copy, never in this repository.
set -eu
version=$1
out=$2
GO=${GO:-go}
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# Outside any module, so this repository's go.mod is not touched.
dir=$(cd "$work" && GOFLAGS= "$GO" mod download -json "github.com/seaweedfs/seaweedfs@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "build-weed: no module dir for seaweedfs@$version" >&2; exit 1; }
cp -R "$dir" "$work/src"
chmod -R u+w "$work/src"
mkdir -p "$(dirname "$out")"
(cd "$work/src" && GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" build -trimpath -ldflags='-s -w' -o "$out.tmp" ./weed)
mv "$out.tmp" "$out"
echo "build-weed: built $out"
