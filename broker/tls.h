/* TLS to the upstream of an injected secret (OpenSSL), over a nonblocking TCP socket the
 * broker already connected: TLS 1.2 or later, the peer's chain checked against the system
 * CA store (or one CA file, for tests) and its name against the host (SNI set too). Each
 * call may want the socket readable or writable first: -EAGAIN, and tls_events says which.
 * Errors come back as negative errno with a message for people in the connection. */
#ifndef CLAWVM_BROKER_TLS_H
#define CLAWVM_BROKER_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TLS_ERR_MAX 256

struct tls_ctx;
struct tls_conn;

/* ca_file NULL: the system's default CA store. NULL with err filled on failure. */
struct tls_ctx *tls_ctx_create(const char *ca_file, char *err, size_t errlen);
void tls_ctx_destroy(struct tls_ctx *ctx);

/* A client connection on fd (not taken: the caller closes it after tls_conn_free) to
 * host, whose certificate must name it. NULL with err filled on failure. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, const char *host, char *err,
			      size_t errlen);
void tls_conn_free(struct tls_conn *c);

/* 0 once the handshake is done, -EAGAIN (see tls_events), or another negative errno
 * (tls_error says why: a certificate that does not verify, a protocol error...). */
__attribute__((warn_unused_result)) int tls_handshake(struct tls_conn *c);
/* Bytes read (> 0), 0 at the peer's end of stream, -EAGAIN or another negative errno. */
__attribute__((warn_unused_result)) ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);
/* Bytes written (> 0), -EAGAIN or another negative errno. After -EAGAIN, call again with
 * the same bytes (OpenSSL's rule). */
__attribute__((warn_unused_result)) ssize_t tls_write(struct tls_conn *c, const void *buf,
						      size_t len);
/* Whether OpenSSL holds decrypted bytes not read yet (epoll cannot tell). */
int tls_pending(const struct tls_conn *c);
/* The epoll events (EPOLLIN and/or EPOLLOUT) the last -EAGAIN waits for. */
uint32_t tls_events(const struct tls_conn *c);
/* Why the last call failed. */
const char *tls_error(const struct tls_conn *c);

#endif
