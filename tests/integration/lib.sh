# Shared by the integration test scripts (sourced): TAP-style results and the exact-output
# check. Each script sets `clawvm` and `work` before calling these.
pass=0
fail=0
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
	tick
	echo "ok - $1 $took$(retried)"
	pass=$((pass + 1))
}
not_ok() {
	tick
	echo "not ok - $1 $took$(retried)"
	shift
	printf '  %s\n' "$@"
	# What the last guest's kernel said, to tell a boot that hung from a test that failed.
	if [ -s "$work/console" ]; then
		echo "  last guest console lines:"
		tail -n 8 "$work/console" | sed 's/^/    /'
	fi
	fail=$((fail + 1))
}

# check NAME WANT_STATUS WANT_STDOUT -- clawvm args: exact stdout and status, empty stderr.
# Bounded by CHECK_TIMEOUT seconds (default $check_timeout), so that one hang costs one test
# a retry (crash_retry), not the whole run. CHECK_RUNNER names a function to run instead of
# cvm (it gets the same arguments), for a check that must set something up before each try.
check() {
	local name=$1 want_status=$2 want_out=$3 out status
	shift 4
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
# 60, any workload; kicking the vCPUs out of KVM_RUN does not revive it; see DESIGN.md §7).
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
		[ -n "$why" ] && [ "$attempt" -lt 3 ] || break
		echo "attempt $attempt: $why" >>"$work/retries"
	done
	cat "$out"
	cat "$err" >&2
	rm -f "$out" "$err"
	return "$status"
}

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
}
