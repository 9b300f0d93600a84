#!/bin/sh
# Native Go fuzzing of every Fuzz target in the repository.
#
#   fuzz.sh list                 print "<package> <target>" for every target
#   fuzz.sh run                  fuzz each target in turn for FUZZTIME (needs Go)
#   fuzz.sh build DIR [REGEXP]   build one test binary per package (those
#                                matching REGEXP) into DIR, with its testdata
#                                and DIR/run-all.sh, to fuzz where there is
#                                no Go toolchain
#
# Targets are found by grepping *_test.go for "func FuzzXxx(f *testing.F)",
# so new ones are picked up without a list to keep. FUZZTIME (default 5m) is
# per target; FUZZ_WORKERS (default 1) is -parallel for each; FUZZ_ONLY (a
# regexp over "<package> <target>") picks targets for `run`.
set -eu

FUZZTIME=${FUZZTIME:-5m}
FUZZ_WORKERS=${FUZZ_WORKERS:-1}
GO=${GO:-go}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

list() {
	grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' \
		--exclude-dir=.cache --exclude-dir=dist --exclude-dir=bin --exclude-dir=testdata . |
		sort | while read -r file; do
			pkg=./$(dirname "${file#./}")
			sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(f \*testing\.F\).*/\1/p' "$file" |
				while read -r target; do echo "$pkg $target"; done
		done
}

run() {
	failed=0
	list | grep -E -- "${FUZZ_ONLY:-.}" > "${TMPDIR:-/tmp}/pullgate-fuzz-targets.$$" || true
	while read -r pkg target; do
		echo "== $pkg $target ($FUZZTIME)"
		if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel "$FUZZ_WORKERS" "$pkg" < /dev/null; then
			failed=$((failed + 1))
			echo "!! $pkg $target failed: the crasher is under $pkg/testdata/fuzz/$target"
		fi
	done < "${TMPDIR:-/tmp}/pullgate-fuzz-targets.$$"
	rm -f "${TMPDIR:-/tmp}/pullgate-fuzz-targets.$$"
	[ "$failed" -eq 0 ] || { echo "$failed fuzz target(s) failed"; exit 1; }
}

build() {
	out=$1
	only=${2:-.}
	mkdir -p "$out"
	list | awk '{print $1}' | sort -u | grep -E -- "$only" | while read -r pkg; do
		name=$(echo "${pkg#./}" | tr '/' '_')
		echo "building $pkg into $out/$name/"
		rm -rf "${out:?}/$name"
		mkdir -p "$out/$name"
		# -fuzz at build time: the binary gets the coverage instrumentation
		# that guides fuzzing (without it, fuzzing runs blind).
		CGO_ENABLED=${CGO_ENABLED:-0} "$GO" test -c -fuzz=. -o "$out/$name/$name.test" "$pkg"
		if [ -d "$pkg/testdata" ]; then cp -R "$pkg/testdata" "$out/$name/testdata"; fi
		list | awk -v p="$pkg" '$1 == p {print $2}' > "$out/$name/targets"
	done
	cp "$root/e2e/fuzz/run-all.sh" "$out/run-all.sh"
	chmod +x "$out/run-all.sh"
	echo "built; run: FUZZTIME=$FUZZTIME $out/run-all.sh"
}

case "${1:-}" in
list) list ;;
run) run ;;
build) build "${2:?usage: fuzz.sh build DIR [package-regexp]}" "${3:-.}" ;;
*) sed -n '2,14p' "$0"; exit 2 ;;
esac
