/* The exec channel: how the host runs a command in the guest over one vsock stream.
 * Shared by the host side (vmm/exec_client.c) and guest-init (guest-init/exec.c); written
 * down for people in api/exec.md. The helpers are pure: no I/O, no global state. */
#ifndef CLAWVM_EXEC_PROTO_H
#define CLAWVM_EXEC_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Every frame: 1 byte type, 4 bytes little-endian payload length, the payload. */
#define EXEC_FRAME_HEADER_LEN 5
/* A REQUEST carries argv and the environment; every other frame is small. */
#define EXEC_REQUEST_MAX_PAYLOAD (1024 * 1024)
#define EXEC_FRAME_MAX_PAYLOAD	 (64 * 1024)

/* Host -> guest. */
#define EXEC_FRAME_REQUEST   1
#define EXEC_FRAME_STDIN     2
#define EXEC_FRAME_STDIN_EOF 3
#define EXEC_FRAME_SIGNAL    4
#define EXEC_FRAME_WINSIZE   5
/* Guest -> host. */
#define EXEC_FRAME_STARTED 16
#define EXEC_FRAME_STDOUT  17
#define EXEC_FRAME_STDERR  18
#define EXEC_FRAME_EXIT	   19
#define EXEC_FRAME_ERROR   20

/* REQUEST flags. */
#define EXEC_FLAG_PTY	 (1u << 0) /* run on a new pseudo-terminal */
#define EXEC_FLAG_MAIN	 (1u << 1) /* its end reports the status and powers the guest off */
#define EXEC_FLAGS_KNOWN (EXEC_FLAG_PTY | EXEC_FLAG_MAIN)

/* Fixed part of a REQUEST: flags, uid, gid (u32), rows, cols (u16). */
#define EXEC_REQUEST_FIXED_LEN 16

/* A decoded (or to-be-encoded) REQUEST. After exec_request_decode the strings point into
 * the payload buffer, which the caller keeps alive; argv and envp end with NULL. */
struct exec_request {
	uint32_t flags;
	uint32_t uid;
	uint32_t gid;
	uint16_t rows;
	uint16_t cols;
	uint32_t argc;
	const char **argv;
	uint32_t envc;
	const char **envp;
	const char *cwd; /* NULL or "" means "/" when encoding */
};

static inline void exec_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void exec_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint16_t exec_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t exec_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* The largest payload a frame of this type may carry. */
uint32_t exec_frame_max_payload(uint8_t type);

void exec_frame_header_encode(uint8_t hdr[EXEC_FRAME_HEADER_LEN], uint8_t type, uint32_t len);

/* Reads a frame header; -EINVAL when the length is above the limit for its type. The type
 * itself is not judged here: each side refuses the types it does not expect. */
int exec_frame_header_parse(const uint8_t hdr[EXEC_FRAME_HEADER_LEN], uint8_t *type, uint32_t *len)
    __attribute__((warn_unused_result));

/* The whole REQUEST frame (header included) in a new buffer (*out, free() it) of *out_len
 * bytes. -EINVAL when argc is 0 or argv/envp hold fewer strings than argc/envc, -E2BIG when
 * the payload would exceed EXEC_REQUEST_MAX_PAYLOAD, -ENOMEM. */
int exec_request_encode(const struct exec_request *req, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));

/* Decodes a REQUEST payload. Never reads outside [buf, buf+len); -EINVAL for a truncated
 * payload, argc 0, an empty program name, counts that cannot fit, a string without its
 * NUL, or bytes left over; -ENOMEM. On success exec_request_release() frees the arrays. */
int exec_request_decode(const uint8_t *buf, size_t len, struct exec_request *req)
    __attribute__((warn_unused_result));

void exec_request_release(struct exec_request *req);

#endif
