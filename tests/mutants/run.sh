#!/bin/bash
# make mutants: apply each fault of tests/mutants/faults.txt, one at a time, to a scratch copy
# of the tree; build it and run the fault's tests in order until a check fails. Prints
# "killed" or "SURVIVED" per fault, then "N killed of M" (and the unobservable ones with
# their reasons). Exits 1 if a fault survived or could not be applied or built.
# MUTANTS="word ..." runs only the faults whose description contains one of the words.
set -u
cd "$(dirname "$0")/../.." || exit 2
TOP=$PWD
SCRATCH=${MUTANTS_DIR:-$TOP/build/mutants}
LOG=$SCRATCH/log
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/src" "$LOG"
git ls-files -z | xargs -0 cp --parents -t "$SCRATCH/src"
S=$SCRATCH/src
# The pristine copy each fault starts from (the checkout may change while this runs).
O=$SCRATCH/orig
cp -a "$S" "$O"
cp -a build "$S/" 2>/dev/null || true
rm -rf "$S/build/mutants"

# apply FILE FIND REPL: replace the one line equal to FIND; fails unless exactly one.
apply() {
	F="$S/$1" FIND=$2 REPL=$3 perl -e '
		my ($f, $find, $repl) = @ENV{qw(F FIND REPL)};
		open(my $in, "<", $f) or die "$f: $!\n";
		my @l = <$in>; close $in;
		my $n = grep { my $x = $_; chomp $x; $x eq $find } @l;
		die "the line occurs $n times: $find\n" if $n != 1;
		for (@l) { my $x = $_; chomp $x; $_ = "$repl\n" if $x eq $find; }
		open(my $out, ">", $f) or die "$f: $!\n"; print $out @l; close $out;'
}

# run_tests WHAT...: 0 if every check passed, 1 at the first failure.
run_tests() {
	local t out
	for t in "$@"; do
		if [ "$t" = unit ]; then
			(cd "$S" && timeout 300 ./build/unit) >"$LOG/$id.unit" 2>&1 || return 1
			(cd "$S" && ASAN_OPTIONS=detect_leaks=1 timeout 300 ./build/unit-asan) \
				>>"$LOG/$id.unit" 2>&1 || return 1
			continue
		fi
		# The scripts of that name; the first that fails ends the fault's run.
		for script in "$S"/tests/integration/test_*"$t"*.sh "$S"/tests/e2e/test_*"$t"*.sh; do
			[ -e "$script" ] || continue
			out=$LOG/$id.$(basename "$script" .sh)
			timeout 900 bash "$script" >"$out" 2>"$out.err" || return 1
			grep -q '^not ok - ' "$out" && return 1
		done
	done
	return 0
}

killed=0 total=0 bad=0 unobs=0 id=0
declare -a finds repls
flush() {
	[ -n "${desc:-}" ] || return 0
	if [ -n "${MUTANTS:-}" ]; then
		local m=0 w
		for w in $MUTANTS; do [[ $desc == *"$w"* ]] && m=1; done
		[ $m = 1 ] || { desc=""; return 0; }
	fi
	id=$((id + 1))
	if [ -n "$unobservable" ]; then
		unobs=$((unobs + 1))
		printf 'unobservable  %s (%s)\n' "$desc" "$unobservable"
		desc=""
		return 0
	fi
	total=$((total + 1))
	local i start=$SECONDS
	cp "$O/$file" "$S/$file"
	for i in "${!finds[@]}"; do
		if ! apply "$file" "${finds[$i]}" "${repls[$i]}" 2>"$LOG/$id.apply"; then
			printf 'NOT APPLIED   %s: %s\n' "$desc" "$(cat "$LOG/$id.apply")"
			bad=$((bad + 1)); cp "$O/$file" "$S/$file"; desc=""; return 0
		fi
	done
	# Faults may trip warnings (an "if (0)"): build them without -Werror.
	if ! make -s -C "$S" WARN="-std=c11 -D_GNU_SOURCE -w" all build/unit build/unit-asan build/gen-orders build/cmp-rows build/conf-keys \
		>"$LOG/$id.build" 2>&1; then
		printf 'NOT BUILT     %s (see %s)\n' "$desc" "$LOG/$id.build"
		bad=$((bad + 1))
	elif run_tests $tests; then
		printf 'SURVIVED      %s [%s] (%ds)\n' "$desc" "$tests" $((SECONDS - start))
	else
		killed=$((killed + 1))
		printf 'killed        %s [%s] (%ds)\n' "$desc" "$tests" $((SECONDS - start))
	fi
	cp "$O/$file" "$S/$file"
	desc=""
}
desc=""
while IFS= read -r line || [ -n "$line" ]; do
	case $line in
	"@ "*) flush; desc=${line#@ }; file="" tests="" unobservable=""; finds=(); repls=() ;;
	"file "*) file=${line#file } ;;
	"find "*) finds+=("${line#find }") ;;
	"repl "*) repls+=("${line#repl }") ;;
	"tests "*) tests=${line#tests } ;;
	"unobservable "*) unobservable=${line#unobservable } ;;
	esac
done < "$O/tests/mutants/faults.txt"
flush
# The scratch tree's binaries are the last fault's: rebuild them clean.
make -s -C "$S" all >/dev/null 2>&1
echo
echo "mutants: $killed killed of $total ($((total - killed - bad)) survived, $bad not applied or built; $unobs unobservable, listed)"
[ $killed = "$total" ]
