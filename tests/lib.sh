# shellcheck shell=bash
# shellcheck disable=SC2154 # work and clawvm: set by the script that sources this
# The shell test library, sourced by the test scripts (integration, fs, soak, smoke, pid1,
# install) and, for now/median, the benchmarks: TAP-style results, the exact-output check, runs bounded in time and retried after
# an emulator fault, and results that outlive a test host that hung. Each script sets
# `clawvm` and `work` before calling these.
pass=0
fail=0

# The suites run as root with fixtures of root's (shares, the root tree): their jailed VMM
# keeps root's uid (without any capability) unless the caller says otherwise. The jail
# suite (tests/jail/run) checks the jail user's own: 65534, the default.
export CLAWVM_JAIL_USER=${CLAWVM_JAIL_USER-0:0}

# --- results that outlive a hung test host ------------------------------------------------
#
# Now and then the emulator under the nested test host freezes it whole (tests/nested/host,
# watch_for_dead_cpu), which then runs the same command again in a new test host. Each
# result is kept in CLAWVM_TEST_STATE (a directory the harness keeps across those attempts;
# unset elsewhere), one file per result, numbered in the order the script gives them. In the
# next attempt, `begin` says which checks still have to run: a check whose results are all
# kept is not run again, its lines are printed as they were, marked as kept. A script that
# finished is replayed whole. So a hang costs the check it hit, not the suite.
result_no=0
result_dir=
group_end=0 # results before this belong to a group begin let run: they run, kept or not
if [ -n "${CLAWVM_TEST_STATE:-}" ]; then
	result_dir=$CLAWVM_TEST_STATE/$(basename "$(dirname "$0")")-$(basename "$0")
	mkdir -p "$result_dir" || result_dir=
fi
kept=" [kept from an earlier test host, which hung later]"

# replay N: print results N (from 0) as kept, and count them. Fails if one is missing.
replay() {
	local line
	[ -n "$result_dir" ] && [ -f "$result_dir/$1" ] || return 1
	line=$(head -n 1 "$result_dir/$1")
	printf '%s%s\n' "$line" "$kept"
	tail -n +2 "$result_dir/$1"
	case $line in
	"ok "*) pass=$((pass + 1)) ;;
	*) fail=$((fail + 1)) ;;
	esac
}

# begin [N]: whether the next check, which gives N results (default 1), has to run. It does
# not when an earlier test host kept all N: they are printed instead. If it runs, all N run
# (a `check` among them too), since a later one may need what an earlier one left. Use as
#   if begin; then ...; ok ... / not_ok ...; fi
begin() {
	local n=${1:-1} i
	[ -n "$result_dir" ] && [ "$result_no" -ge "$group_end" ] || return 0
	for ((i = result_no; i < result_no + n; i++)); do
		[ -f "$result_dir/$i" ] || {
			group_end=$((result_no + n))
			return 0
		}
	done
	for ((i = result_no; i < result_no + n; i++)); do
		replay "$i"
	done
	result_no=$((result_no + n))
	return 1
}

# keep TEXT: the result just printed, as result number result_no.
keep() {
	if [ -n "$result_dir" ]; then
		printf '%s\n' "$1" >"$result_dir/.tmp" && mv -f "$result_dir/.tmp" "$result_dir/$result_no"
	fi
	result_no=$((result_no + 1))
}

# A script that finished in an earlier test host is not run again: its results are printed.
if [ -n "$result_dir" ] && [ -f "$result_dir/finished" ]; then
	while replay "$result_no"; do result_no=$((result_no + 1)); done
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
fi

# A run's time bound, seconds. A normal check takes 4-10 s in the nested test host, the
# slowest default one (100 MiB through stdout) about 60 s.
check_timeout=180
t_last=$(date +%s)

# Each result says how long it took since the previous one, to see where the time goes.
# (Not in a $(...) subshell, which could not move t_last on.)
took=
tick() {
	local now
	now=$(date +%s)
	took="($((now - t_last))s)"
	t_last=$now
}
# A result also says how many runs were repeated because the emulated test host crashed or
# hung the guest (crash_retry), so that the retries stay visible.
retried() {
	local n=0
	[ -f "$work/retries" ] && n=$(wc -l <"$work/retries")
	[ "$n" -gt 0 ] && printf ' (run again after %s: %s)' "$n" "$(cut -d' ' -f3- "$work/retries" | paste -sd, | sed 's/,/, /g')"
	rm -f "$work/retries"
	return 0
}
ok() {
	local line
	tick
	line="ok - $1 $took$(retried)"
	echo "$line"
	keep "$line"
	pass=$((pass + 1))
}
not_ok() {
	local text
	tick
	text=$(
		echo "not ok - $1 $took$(retried)"
		shift
		printf '  %s\n' "$@"
		# What the last guest's kernel said, to tell a boot that hung from a test that failed.
		if [ -s "$work/console" ]; then
			echo "  last guest console lines:"
			tail -n 8 "$work/console" | sed 's/^/    /'
		fi
	)
	echo "$text"
	keep "$text"
	fail=$((fail + 1))
}

# check NAME WANT_STATUS WANT_STDOUT -- clawvm args: exact stdout and status, empty stderr.
# Bounded by CHECK_TIMEOUT seconds (default $check_timeout), so that one hang costs one test
# a retry (crash_retry), not the whole run. CHECK_RUNNER names a function to run instead of
# cvm (it gets the same arguments), for a check that must set something up before each try.
check() {
	local name=$1 want_status=$2 want_out=$3 out status
	shift 4
	begin 1 || return 0
	out=$(crash_retry "${CHECK_RUNNER:-cvm}" "$@" 2>"$work/err")
	status=$?
	if [ "$status" = "$want_status" ] && [ "$out" = "$want_out" ] && [ ! -s "$work/err" ]; then
		ok "$name"
	else
		not_ok "$name" "status $status (want $want_status)" \
			"stdout $(printf %q "$out" | head -c 400) (want $(printf %q "$want_out"))" \
			"stderr $(head -c 400 "$work/err")"
	fi
}

# clawvm bounded by CHECK_TIMEOUT seconds, for the commands that are not a `check`; a run
# keeps its guest's console in $work/console for not_ok (a test's own --console-log, given
# later, wins).
cvm() {
	if [ "$1" = run ]; then
		shift
		set -- run --console-log "$work/console" "$@"
		rm -f "$work/console"
	fi
	timeout -k 10 "${CHECK_TIMEOUT:-$check_timeout}" "$clawvm" "$@"
}

# cvm_stdin FILE ARGS...: cvm ARGS with stdin from FILE, which a retry reads again.
cvm_stdin() {
	local in=$1
	shift
	cvm "$@" <"$in"
}

# crash_retry CMD...: CMD (a cvm run whose output is captured whole), run again, at most
# twice, when it failed because the guest triple-faulted or hung until CHECK_TIMEOUT. QEMU's
# TCG emulation of SVM, under which the test host runs KVM, now and then resets a guest vCPU
# mid-run, or leaves a guest vCPU waiting for an interrupt that never comes (about 1 run in
# 60, any workload; kicking the vCPUs out of KVM_RUN does not revive it; see docs/testing.md).
# Hardware KVM does neither. Any other failure stands as it is. Each retry is noted in
# $work/retries, and the next ok/not_ok line says so. Output is held back until the last
# attempt, so a failed attempt's partial output never mixes in. stdin is not replayed
# (cvm_stdin replays a file): a test that pipes stdin in fails, not passes, after a retry.
crash_retry() {
	local out err status attempt start limit=${CHECK_TIMEOUT:-$check_timeout} why
	out=$(mktemp -p "$work") err=$(mktemp -p "$work")
	for attempt in 1 2 3; do
		start=$(date +%s)
		"$@" >"$out" 2>"$err"
		status=$?
		why=
		if [ "$status" != 0 ]; then
			if grep -q 'the guest triple-faulted' "$err"; then
				why="a triple fault"
			elif [ $(($(date +%s) - start)) -ge "$limit" ]; then
				why="a hang (${limit}s)"
			fi
		fi
		if [ -z "$why" ] || [ "$attempt" -ge 3 ]; then
			break
		fi
		echo "attempt $attempt: $why" >>"$work/retries"
	done
	cat "$out"
	cat "$err" >&2
	rm -f "$out" "$err"
	return "$status"
}

finish() {
	[ -z "$result_dir" ] || : >"$result_dir/finished"
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
}

# --- for the benchmarks (bench/) ---------------------------------------------------------

# now: the time in nanoseconds, for intervals.
now() { date +%s%N; }
# median NUMBER...: the middle one (the mean of the middle two for an even count).
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
