/* Unit tests for the exec channel's frames (api/exec_proto.c): header limits, REQUEST
 * round trips, and every malformed REQUEST refused without reading past its end (each
 * payload is a heap copy of exactly its length, so ASan sees any overread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/exec_proto.h"

static void test_header_round_trip(void **state)
{
	uint8_t hdr[EXEC_FRAME_HEADER_LEN];
	uint32_t len;
	uint8_t type;

	(void)state;
	exec_frame_header_encode(hdr, EXEC_FRAME_STDOUT, 0x01020304 & 0xffff);
	assert_int_equal(hdr[0], EXEC_FRAME_STDOUT);
	assert_int_equal(hdr[1], 0x04);
	assert_int_equal(hdr[2], 0x03);
	assert_int_equal(hdr[3], 0);
	assert_int_equal(exec_frame_header_parse(hdr, &type, &len), 0);
	assert_int_equal(type, EXEC_FRAME_STDOUT);
	assert_int_equal(len, 0x0304);
}

static void test_header_limits(void **state)
{
	uint8_t hdr[EXEC_FRAME_HEADER_LEN];
	uint32_t len;
	uint8_t type;

	(void)state;
	exec_frame_header_encode(hdr, EXEC_FRAME_STDIN, EXEC_FRAME_MAX_PAYLOAD);
	assert_int_equal(exec_frame_header_parse(hdr, &type, &len), 0);
	exec_frame_header_encode(hdr, EXEC_FRAME_STDIN, EXEC_FRAME_MAX_PAYLOAD + 1);
	assert_int_equal(exec_frame_header_parse(hdr, &type, &len), -EINVAL);
	exec_frame_header_encode(hdr, EXEC_FRAME_STDERR, EXEC_FRAME_MAX_PAYLOAD + 1);
	assert_int_equal(exec_frame_header_parse(hdr, &type, &len), -EINVAL);
	exec_frame_header_encode(hdr, EXEC_FRAME_REQUEST, EXEC_REQUEST_MAX_PAYLOAD);
	assert_int_equal(exec_frame_header_parse(hdr, &type, &len), 0);
	assert_int_equal(len, EXEC_REQUEST_MAX_PAYLOAD);
	exec_frame_header_encode(hdr, EXEC_FRAME_REQUEST, EXEC_REQUEST_MAX_PAYLOAD + 1);
	assert_int_equal(exec_frame_header_parse(hdr, &type, &len), -EINVAL);
	exec_frame_header_encode(hdr, EXEC_FRAME_STDIN, 0xffffffffu);
	assert_int_equal(exec_frame_header_parse(hdr, &type, &len), -EINVAL);
}

/* Decodes a heap copy of exactly len bytes. */
static int decode_copy(const uint8_t *payload, size_t len, struct exec_request *req,
		       uint8_t **copy_out)
{
	uint8_t *copy = malloc(len ? len : 1);

	assert_non_null(copy);
	memcpy(copy, payload, len);
	*copy_out = copy;
	return exec_request_decode(copy, len, req);
}

static void test_request_round_trip(void **state)
{
	const char *argv[] = {"sh", "-c", "echo \"$X\"", "", NULL};
	const char *envp[] = {"X=1", "PATH=/bin", NULL};
	struct exec_request in = {
	    .flags = EXEC_FLAG_PTY | EXEC_FLAG_MAIN,
	    .uid = 1000,
	    .gid = 0xfffffffe,
	    .rows = 24,
	    .cols = 0xffff,
	    .argc = 4,
	    .argv = argv,
	    .envc = 2,
	    .envp = envp,
	    .cwd = "/work space",
	};
	struct exec_request out;
	uint8_t *frame, *copy;
	size_t frame_len;
	uint32_t len;
	uint8_t type;

	(void)state;
	assert_int_equal(exec_request_encode(&in, &frame, &frame_len), 0);
	assert_int_equal(exec_frame_header_parse(frame, &type, &len), 0);
	assert_int_equal(type, EXEC_FRAME_REQUEST);
	assert_int_equal(len, frame_len - EXEC_FRAME_HEADER_LEN);
	/* 16 fixed + 4 + "sh\0-c\0echo \"$X\"\0\0" + 4 + "X=1\0PATH=/bin\0" + "/work space\0" */
	assert_int_equal(len, 16 + 4 + 3 + 3 + 10 + 1 + 4 + 4 + 10 + 12);
	assert_int_equal(decode_copy(frame + EXEC_FRAME_HEADER_LEN, len, &out, &copy), 0);
	assert_int_equal(out.flags, EXEC_FLAG_PTY | EXEC_FLAG_MAIN);
	assert_int_equal(out.uid, 1000);
	assert_int_equal(out.gid, 0xfffffffe);
	assert_int_equal(out.rows, 24);
	assert_int_equal(out.cols, 0xffff);
	assert_int_equal(out.argc, 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(out.argv[i], argv[i]);
	assert_null(out.argv[4]);
	assert_int_equal(out.envc, 2);
	assert_string_equal(out.envp[0], "X=1");
	assert_string_equal(out.envp[1], "PATH=/bin");
	assert_null(out.envp[2]);
	assert_string_equal(out.cwd, "/work space");
	exec_request_release(&out);
	free(copy);
	free(frame);
}

static void test_request_empty_env_and_cwd(void **state)
{
	const char *argv[] = {"true", NULL};
	struct exec_request in = {.argc = 1, .argv = argv}, out;
	uint8_t *frame, *copy;
	size_t frame_len;

	(void)state;
	assert_int_equal(exec_request_encode(&in, &frame, &frame_len), 0);
	assert_int_equal(frame_len, EXEC_FRAME_HEADER_LEN + 16 + 4 + 5 + 4 + 1);
	assert_int_equal(decode_copy(frame + EXEC_FRAME_HEADER_LEN,
				     frame_len - EXEC_FRAME_HEADER_LEN, &out, &copy),
			 0);
	assert_int_equal(out.envc, 0);
	assert_null(out.envp[0]);
	assert_string_equal(out.cwd, "");
	exec_request_release(&out);
	free(copy);
	free(frame);
}

static void test_request_encode_refuses(void **state)
{
	const char *argv[] = {"x", NULL};
	const char *empty[] = {"", NULL};
	struct exec_request req = {.argc = 0, .argv = argv};
	uint8_t *frame = NULL;
	size_t len;
	char *big;

	(void)state;
	assert_int_equal(exec_request_encode(&req, &frame, &len), -EINVAL);
	req.argc = 2; /* argv holds only one string */
	assert_int_equal(exec_request_encode(&req, &frame, &len), -EINVAL);
	req.argc = 1;
	req.envc = 1; /* envp NULL */
	assert_int_equal(exec_request_encode(&req, &frame, &len), -EINVAL);
	req.envc = 0;
	req.argv = empty;
	assert_int_equal(exec_request_encode(&req, &frame, &len), -EINVAL);

	big = malloc(EXEC_REQUEST_MAX_PAYLOAD);
	assert_non_null(big);
	memset(big, 'a', EXEC_REQUEST_MAX_PAYLOAD - 1);
	big[EXEC_REQUEST_MAX_PAYLOAD - 1] = '\0';
	argv[0] = big;
	req.argv = argv;
	assert_int_equal(exec_request_encode(&req, &frame, &len), -E2BIG);
	assert_null(frame);
	free(big);
}

/* A payload built by hand: fixed part, then raw bytes. */
static size_t build(uint8_t *p, uint32_t flags, const void *rest, size_t rest_len)
{
	memset(p, 0, EXEC_REQUEST_FIXED_LEN);
	exec_put_le32(p, flags);
	memcpy(p + EXEC_REQUEST_FIXED_LEN, rest, rest_len);
	return EXEC_REQUEST_FIXED_LEN + rest_len;
}

static int decode_raw(uint32_t flags, const void *rest, size_t rest_len)
{
	uint8_t p[256], *copy;
	struct exec_request req;
	size_t len = build(p, flags, rest, rest_len);
	int ret = decode_copy(p, len, &req, &copy);

	if (ret == 0)
		exec_request_release(&req);
	free(copy);
	return ret;
}

#define RAW(s) s, sizeof(s) - 1

static void test_request_decode_malformed(void **state)
{
	uint8_t *copy;
	struct exec_request req;
	uint8_t fixed[EXEC_REQUEST_FIXED_LEN] = {0};

	(void)state;
	/* The well-formed baseline, to show the cases below fail for their one defect. */
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls\0"
					   "\1\0\0\0A=B\0"
					   "/\0")),
			 0);
	/* Truncated everywhere. */
	for (size_t cut = 0; cut < EXEC_REQUEST_FIXED_LEN; cut++) {
		assert_int_equal(decode_copy(fixed, cut, &req, &copy), -EINVAL);
		free(copy);
	}
	assert_int_equal(decode_raw(0, RAW("")), -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\1\0\0")), -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls")), -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls\0")), -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls\0\1\0\0\0A=B")), -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls\0\0\0\0\0")), -EINVAL); /* no cwd */
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls\0\0\0\0\0/")), -EINVAL);
	/* argc 0, empty program name. */
	assert_int_equal(decode_raw(0, RAW("\0\0\0\0\0\0\0\0/\0")), -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0\0\0\0\0\0/\0")), -EINVAL);
	/* Absurd counts: more strings than bytes. */
	assert_int_equal(decode_raw(0, RAW("\xff\xff\xff\xffls\0\0\0\0\0/\0")), -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls\0\xff\xff\xff\x7f"
					   "A\0/\0")),
			 -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\3\0\0\0ls\0\0\0\0\0/\0")), -EINVAL);
	/* Trailing garbage after cwd. */
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls\0\0\0\0\0/\0x")), -EINVAL);
	assert_int_equal(decode_raw(0, RAW("\1\0\0\0ls\0\0\0\0\0/\0\0")), -EINVAL);
	/* Unknown flags. */
	assert_int_equal(decode_raw(1u << 2, RAW("\1\0\0\0ls\0\0\0\0\0/\0")), -EINVAL);
	assert_int_equal(decode_raw(EXEC_FLAGS_KNOWN, RAW("\1\0\0\0ls\0\0\0\0\0/\0")), 0);
}

/* Every prefix of a valid REQUEST is refused, never read past (ASan watches the copy). */
static void test_request_decode_every_prefix(void **state)
{
	const char *argv[] = {"prog", "arg", NULL};
	const char *envp[] = {"K=V", NULL};
	struct exec_request in = {.argc = 2, .argv = argv, .envc = 1, .envp = envp, .cwd = "/x"};
	struct exec_request out;
	uint8_t *frame, *copy;
	size_t frame_len, len;

	(void)state;
	assert_int_equal(exec_request_encode(&in, &frame, &frame_len), 0);
	len = frame_len - EXEC_FRAME_HEADER_LEN;
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(decode_copy(frame + EXEC_FRAME_HEADER_LEN, cut, &out, &copy),
				 -EINVAL);
		free(copy);
	}
	assert_int_equal(decode_copy(frame + EXEC_FRAME_HEADER_LEN, len, &out, &copy), 0);
	exec_request_release(&out);
	free(copy);
	free(frame);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_round_trip),
	    cmocka_unit_test(test_header_limits),
	    cmocka_unit_test(test_request_round_trip),
	    cmocka_unit_test(test_request_empty_env_and_cwd),
	    cmocka_unit_test(test_request_encode_refuses),
	    cmocka_unit_test(test_request_decode_malformed),
	    cmocka_unit_test(test_request_decode_every_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
