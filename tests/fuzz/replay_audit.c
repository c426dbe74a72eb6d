/* Runs the audit log fuzz target without libFuzzer (gcc builds, CI under ASan/UBSan):
 *   fuzz_audit_replay FILE...          replays inputs (crashes, a corpus)
 *   fuzz_audit_replay [RUNS [SEED]]    RUNS generated inputs, 20000 by default
 * Generated inputs are events of each kind as a sender sends them, and log lines as the
 * writer writes them, then a few mutations (replay_json.c): a value of another type, a
 * chain key or a field the event does not have, deep nesting, NULs and bad UTF-8. */
#include <string.h>

#include "replay.h"

#define CAP 8192

static const char *const seeds[] = {
    "{\"event\":\"start\",\"name\":\"demo\",\"cpus\":2,\"memory_mib\":512,\"shares\":[{"
    "\"host\":\"/src\",\"guest\":\"/workspace\",\"read_only\":true}]}",
    "{\"event\":\"stop\",\"reason\":\"exited\",\"status\":0}",
    "{\"event\":\"exec\",\"argv\":[\"echo\",\"hi\"],\"status\":0,\"duration_ms\":12}",
    "{\"event\":\"exec\",\"argv\":[\"sleep\",\"1\"],\"signal\":9,\"duration_ms\":1,\"cut\":true}",
    "{\"event\":\"egress\",\"host\":\"evil.com\",\"port\":443,\"addr\":null,\"decision\":"
    "\"denied\",\"reason\":\"not in the allowlist\",\"bytes_up\":0,\"bytes_down\":0,"
    "\"duration_ms\":1}",
    "{\"event\":\"secret\",\"name\":\"OPENAI_API_KEY\",\"host\":\"api.openai.com\"}",
    "{\"event\":\"file\",\"op\":\"renamed\",\"path\":\"/a\",\"to\":\"/b\"}",
    "{\"seq\":1,\"ts\":\"2026-12-04T18:52:19.123Z\",\"prev\":"
    "\"0000000000000000000000000000000000000000000000000000000000000000\",\"src\":\"vmm\","
    "\"event\":\"file\",\"op\":\"created\",\"path\":\"/x\"}\n",
};

static const char *const tokens[] = {
    "65536",
    "\"\\u001b[2J\"",
    "\"\xe2\x80\xae\"",
    "\n",
    "\"seq\":1,",
    "\"prev\":\"0\",",
    "\"cut\":true,",
    "\"to\":\"/b\",",
    "\"signal\":9,",
    "\"event\":\"stop\",",
    "\"shares\":[{\"host\":\"/h\",\"guest\":\"/g\",\"read_only\":false}],",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static size_t generate(uint8_t *in, size_t cap)
{
	return replay_generate_json(in, cap, seeds, ARRAY_LEN(seeds), tokens, ARRAY_LEN(tokens));
}

const struct replay_target replay_target = {"fuzz_audit_replay", CAP, 20000, generate};
