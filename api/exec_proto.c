/* The exec channel's frames (api/exec.md): header encode/parse and the REQUEST payload,
 * encoded by the host and decoded, with every bound checked, by guest-init. */
#include "api/exec_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint32_t exec_frame_max_payload(uint8_t type)
{
	return type == EXEC_FRAME_REQUEST ? EXEC_REQUEST_MAX_PAYLOAD : EXEC_FRAME_MAX_PAYLOAD;
}

void exec_frame_header_encode(uint8_t hdr[EXEC_FRAME_HEADER_LEN], uint8_t type, uint32_t len)
{
	hdr[0] = type;
	exec_put_le32(hdr + 1, len);
}

int exec_frame_header_parse(const uint8_t hdr[EXEC_FRAME_HEADER_LEN], uint8_t *type, uint32_t *len)
{
	uint32_t payload = exec_get_le32(hdr + 1);

	if (payload > exec_frame_max_payload(hdr[0]))
		return -EINVAL;
	*type = hdr[0];
	*len = payload;
	return 0;
}

/* Adds the encoded size of count strings to *total; -EINVAL on a missing string. */
static int strings_size(const char **strs, uint32_t count, size_t *total)
{
	for (uint32_t i = 0; i < count; i++) {
		if (!strs || !strs[i])
			return -EINVAL;
		*total += strlen(strs[i]) + 1;
		if (*total > EXEC_REQUEST_MAX_PAYLOAD)
			return -E2BIG;
	}
	return 0;
}

static uint8_t *put_strings(uint8_t *p, const char **strs, uint32_t count)
{
	exec_put_le32(p, count);
	p += 4;
	for (uint32_t i = 0; i < count; i++) {
		size_t n = strlen(strs[i]) + 1;

		memcpy(p, strs[i], n);
		p += n;
	}
	return p;
}

int exec_request_encode(const struct exec_request *req, uint8_t **out, size_t *out_len)
{
	const char *cwd = req->cwd ? req->cwd : "";
	size_t payload = EXEC_REQUEST_FIXED_LEN + 4 + 4 + strlen(cwd) + 1;
	uint8_t *buf, *p;
	int ret;

	if (req->argc == 0 || !req->argv || !req->argv[0] || req->argv[0][0] == '\0')
		return -EINVAL;
	ret = strings_size(req->argv, req->argc, &payload);
	if (ret == 0)
		ret = strings_size(req->envp, req->envc, &payload);
	if (ret < 0)
		return ret;
	if (payload > EXEC_REQUEST_MAX_PAYLOAD)
		return -E2BIG;

	buf = malloc(EXEC_FRAME_HEADER_LEN + payload);
	if (!buf)
		return -ENOMEM;
	exec_frame_header_encode(buf, EXEC_FRAME_REQUEST, (uint32_t)payload);
	p = buf + EXEC_FRAME_HEADER_LEN;
	exec_put_le32(p, req->flags);
	exec_put_le32(p + 4, req->uid);
	exec_put_le32(p + 8, req->gid);
	exec_put_le16(p + 12, req->rows);
	exec_put_le16(p + 14, req->cols);
	p += EXEC_REQUEST_FIXED_LEN;
	p = put_strings(p, req->argv, req->argc);
	p = put_strings(p, req->envp, req->envc);
	memcpy(p, cwd, strlen(cwd) + 1);
	*out = buf;
	*out_len = EXEC_FRAME_HEADER_LEN + payload;
	return 0;
}

/* A cursor over the payload: every read checks what is left first. */
struct reader {
	const uint8_t *p;
	size_t left;
};

static int read_u32(struct reader *r, uint32_t *v)
{
	if (r->left < 4)
		return -EINVAL;
	*v = exec_get_le32(r->p);
	r->p += 4;
	r->left -= 4;
	return 0;
}

static int read_string(struct reader *r, const char **s)
{
	const uint8_t *nul = memchr(r->p, '\0', r->left);

	if (!nul)
		return -EINVAL;
	*s = (const char *)r->p;
	r->left -= (size_t)(nul - r->p) + 1;
	r->p = nul + 1;
	return 0;
}

/* count strings into a new NULL-terminated array. Each string takes at least one byte, so
 * a count above the bytes left is refused before anything is allocated. */
static int read_strings(struct reader *r, const char ***out, uint32_t *count_out)
{
	const char **strs;
	uint32_t count;

	if (read_u32(r, &count) < 0 || count > r->left)
		return -EINVAL;
	strs = calloc((size_t)count + 1, sizeof(*strs));
	if (!strs)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		if (read_string(r, &strs[i]) < 0) {
			free(strs);
			return -EINVAL;
		}
	}
	*out = strs;
	*count_out = count;
	return 0;
}

int exec_request_decode(const uint8_t *buf, size_t len, struct exec_request *req)
{
	struct reader r = {.p = buf, .left = len};
	int ret;

	memset(req, 0, sizeof(*req));
	if (len > EXEC_REQUEST_MAX_PAYLOAD || len < EXEC_REQUEST_FIXED_LEN)
		return -EINVAL;
	req->flags = exec_get_le32(buf);
	req->uid = exec_get_le32(buf + 4);
	req->gid = exec_get_le32(buf + 8);
	req->rows = exec_get_le16(buf + 12);
	req->cols = exec_get_le16(buf + 14);
	r.p += EXEC_REQUEST_FIXED_LEN;
	r.left -= EXEC_REQUEST_FIXED_LEN;
	if (req->flags & ~EXEC_FLAGS_KNOWN)
		return -EINVAL;

	ret = read_strings(&r, &req->argv, &req->argc);
	if (ret < 0)
		return ret;
	if (req->argc == 0 || req->argv[0][0] == '\0') {
		ret = -EINVAL;
		goto err;
	}
	ret = read_strings(&r, &req->envp, &req->envc);
	if (ret < 0)
		goto err;
	ret = read_string(&r, &req->cwd);
	if (ret < 0)
		goto err;
	if (r.left != 0) {
		ret = -EINVAL;
		goto err;
	}
	return 0;
err:
	exec_request_release(req);
	return ret;
}

void exec_request_release(struct exec_request *req)
{
	free(req->argv);
	free(req->envp);
	memset(req, 0, sizeof(*req));
}
