#!/bin/sh
# Runs every fuzz target of the test binaries next to this script, all at
# once, for FUZZTIME each (default 5m), without a Go toolchain. Built by
# `make fuzz-bin` (e2e/fuzz/fuzz.sh build). Each target runs in its own
# work directory under OUT (default ./fuzz-out) with a copy of its
# package's testdata (seed corpus), its own -test.fuzzcachedir and log.
# A crasher lands in OUT/<package>-<target>/testdata/fuzz/<target>/: copy
# it into the package's testdata/fuzz/<target>/ as a regression seed.
#
#   FUZZTIME=10m FUZZ_WORKERS=2 ./run-all.sh [target-regexp]
set -u

FUZZTIME=${FUZZTIME:-5m}
FUZZ_WORKERS=${FUZZ_WORKERS:-1}
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$PWD/fuzz-out}
only=${1:-.}
mkdir -p "$OUT"

jobs=""
for dir in "$here"/*/; do
	name=$(basename "$dir")
	bin="$dir$name.test"
	[ -x "$bin" ] || continue
	for target in $(cat "$dir/targets"); do
		echo "$target" | grep -Eq -- "$only" || continue
		work="$OUT/$name-$target"
		rm -rf "$work"
		mkdir -p "$work"
		if [ -d "$dir/testdata" ]; then cp -R "$dir/testdata" "$work/testdata"; fi
		(
			cd "$work" &&
				"$bin" -test.run='^$' -test.fuzz="^${target}\$" -test.fuzztime="$FUZZTIME" \
					-test.fuzzcachedir="$work/cache" -test.parallel="$FUZZ_WORKERS" > "$work/log" 2>&1
			echo $? > "$work/rc"
		) &
		jobs="$jobs $name-$target"
	done
done
echo "fuzzing$jobs for $FUZZTIME each; logs under $OUT"
wait

found=0
printf '%-50s %-8s %12s  %s\n' TARGET RESULT EXECS CRASHER
for job in $jobs; do
	work="$OUT/$job"
	rc=$(cat "$work/rc" 2>/dev/null || echo "?")
	execs=$(grep -o 'execs: [0-9]*' "$work/log" | tail -n 1 | awk '{print $2}')
	crasher=""
	result=ok
	if [ "$rc" != 0 ]; then
		result=FAIL
		found=$((found + 1))
		crasher=$(sed -n 's/.*Failing input written to \(.*\)$/\1/p' "$work/log" | head -n 1)
		[ -n "$crasher" ] && crasher="$work/$crasher"
	fi
	printf '%-50s %-8s %12s  %s\n' "$job" "$result" "${execs:-?}" "$crasher"
done
[ "$found" -eq 0 ] || { echo "$found target(s) failed: see the logs and crashers above"; exit 1; }
