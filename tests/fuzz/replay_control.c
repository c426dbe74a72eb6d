/* Runs the control API fuzz target without libFuzzer (gcc builds, CI under ASan/UBSan):
 *   fuzz_control_replay FILE...          replays inputs (crashes, a corpus)
 *   fuzz_control_replay [RUNS [SEED]]    RUNS generated inputs, 100000 by default
 * Generated inputs are request (and reply) lines: a valid line of each method, then a few
 * mutations of the kinds that reach the parser's refusals: a value swapped for one of
 * another type, a token inserted, bytes flipped or cut, deep nesting, NULs and bad UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "replay.h"

#define CAP 8192

static const char *const seeds[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"set_machine\",\"params\":{\"vcpus\":2,"
    "\"memory_mib\":512}}",
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"set_boot\",\"params\":{\"kernel\":\"/k\","
    "\"initrd\":\"/i\",\"rootfs\":\"/r\",\"cmdline\":\"quiet\",\"console_log\":\"/c\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"add_share\",\"params\":{\"host\":\"/srv\","
    "\"guest\":\"/mnt\",\"read_only\":true}}",
    "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"set_vsock\",\"params\":{\"cid\":3,\"uds\":\"/v\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"set_exec_defaults\",\"params\":{\"env\":[\"A=1\"],"
    "\"uid\":0,\"gid\":0,\"cwd\":\"/\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"start\"}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"pause\",\"params\":{}}",
    "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"stop\",\"params\":{\"timeout_ms\":100}}",
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"exec\",\"params\":{\"argv\":[\"sh\",\"-c\",\"ls\"],"
    "\"env\":[\"X=1\"],\"cwd\":\"/\",\"uid\":1,\"gid\":1,\"tty\":true,\"rows\":24,\"cols\":80,"
    "\"main\":true,\"attach\":true}}",
    "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"signal\",\"params\":{\"signal\":\"SIGRTMIN+3\","
    "\"id\":1}}",
    "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscribe\",\"params\":{\"events\":[\"ready\","
    "\"exec.exit\",\"exit\",\"error\"]}}",
    "{\"jsonrpc\":\"2.0\",\"id\":10,\"result\":{\"exit\":{\"reason\":\"exited\",\"status\":0}}}",
    "{\"jsonrpc\":\"2.0\",\"id\":11,\"error\":{\"code\":-32601,\"message\":\"no method\"}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"exec.exit\",\"params\":{\"id\":1,\"status\":143}}",
};

/* Tokens put in place of a value or between bytes. */
static const char *const tokens[] = {
    "null",
    "true",
    "-3",
    "1.5",
    "9223372036854775807",
    "9223372036854775808",
    "1e999",
    "[]",
    "{}",
    "\"\"",
    "\"\\u0000\"",
    "\"\xff\"",
    "\"\xc3\"",
    "\"K=V\"",
    "\"SIGTERM\"",
    "\"RTMAX-1\"",
    ",",
    ":",
    "\"",
    "[",
    "{",
    "}",
    "]",
    "\\",
    "\"id\":",
    "\"params\":",
    "\"method\":\"strat\"",
};

static size_t generate(uint8_t *in, size_t cap)
{
	size_t len = replay_seed(in, seeds, sizeof(seeds) / sizeof(seeds[0]));

	for (unsigned n = (unsigned)below(4); n > 0; n--) {
		size_t at = below(len + 1);

		if (below(6) == 0) { /* deep nesting */
			size_t depth = below(8) ? below(64) : below(cap / 2);

			for (size_t i = 0; i < depth && len < cap; i++)
				len = replay_insert(in, len, cap, at, "[", 1);
		} else {
			len =
			    replay_mutate(in, len, cap, tokens, sizeof(tokens) / sizeof(tokens[0]));
		}
	}
	return len;
}

const struct replay_target replay_target = {"fuzz_control_replay", CAP, 100000, generate};
