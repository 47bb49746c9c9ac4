#!/bin/bash
# make test: the unit tests (plain, then under ASan+UBSan), then every integration and
# end-to-end test script. Ends with one line "N passed, N failed, N skipped".
# TESTS="a b" runs only the scripts whose names contain a or b.
# A script's "skip - NAME: why" lines count as skipped. Under CI (CI=true) a skip fails the
# run unless a line of EXPECTED_SKIPS (newline separated) is part of its name: a check that
# could not run on the CI machine is declared there, or it is a failure.
cd "$(dirname "$0")/.." || exit 2
pass=0 fail=0 skipped=0
log=tests/tmp/last-run.log
mkdir -p tests/tmp
: > "$log"

count_unit() { # binary
	local out line
	out=$(ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$1" 2>>"$log")
	local rc=$?
	line=$(tail -n 1 <<<"$out")
	echo "$1: $line"
	if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		pass=$((pass + BASH_REMATCH[1]))
		fail=$((fail + BASH_REMATCH[2]))
	fi
	[ $rc = 0 ] || { fail=$((fail + 1)); echo "$1 exited $rc (see $log)"; }
}

if [ -z "${TESTS:-}" ]; then
	count_unit build/unit
	count_unit build/unit-asan
	if command -v clang >/dev/null; then
		# A short bounded run of the libFuzzer harnesses (make fuzz runs them longer).
		while IFS= read -r line; do
			echo "$line"
			if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
				pass=$((pass + BASH_REMATCH[1])); fail=$((fail + BASH_REMATCH[2]))
			fi
		done < <(make -s fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-15} 2>>"$log" | grep -E 'passed, [0-9]+ failed')
	fi
	if command -v clang-format >/dev/null; then
		if make -s check-format >>"$log" 2>&1; then
			echo "format: 1 passed, 0 failed"; pass=$((pass + 1))
		else
			echo "not ok - the C sources do not follow .clang-format (make format)"; fail=$((fail + 1))
		fi
	fi
fi

for t in tests/integration/test_*.sh tests/e2e/test_*.sh; do
	[ -e "$t" ] || continue
	if [ -n "${TESTS:-}" ]; then
		m=0
		for w in $TESTS; do [[ $t == *$w* ]] && m=1; done
		[ $m = 1 ] || continue
	fi
	start=$(date +%s)
	out=$(bash "$t" 2>>"$log")
	rc=$?
	p=$(grep -c '^ok - ' <<<"$out")
	f=$(grep -c '^not ok - ' <<<"$out")
	s=$(grep -c '^skip - ' <<<"$out")
	grep '^not ok - ' <<<"$out"
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		echo "$line"
		if [ "${CI:-}" = true ]; then
			declared=0
			while IFS= read -r e; do
				[ -n "$e" ] && [[ $line == *"$e"* ]] && declared=1
			done <<<"${EXPECTED_SKIPS:-}"
			[ $declared = 1 ] || { f=$((f + 1)); echo "not ok - undeclared skip under CI: ${line#skip - }"; }
		fi
	done < <(grep '^skip - ' <<<"$out")
	if [ $rc != 0 ] && [ "$f" = 0 ]; then
		f=1
		echo "not ok - $t exited $rc"
	fi
	echo "$t: $p passed, $f failed, $s skipped ($(( $(date +%s) - start ))s)"
	pass=$((pass + p))
	fail=$((fail + f))
	skipped=$((skipped + s))
done
echo
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" = 0 ]
