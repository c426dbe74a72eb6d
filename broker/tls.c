/* The broker's TLS client (tls.h), on OpenSSL. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "broker/tls.h"

struct tls_ctx {
	SSL_CTX *ssl;
};

struct tls_conn {
	SSL *ssl;
	uint32_t want;
	char err[TLS_ERR_MAX];
};

/* OpenSSL's oldest queued error, as text, or `fallback`. */
static void ssl_reason(char *out, size_t len, const char *what, const char *fallback)
{
	unsigned long e = ERR_get_error();
	char text[160];

	if (e)
		ERR_error_string_n(e, text, sizeof(text));
	snprintf(out, len, "%s: %s", what, e ? text : fallback);
	ERR_clear_error();
}

struct tls_ctx *tls_ctx_create(const char *ca_file, char *err, size_t errlen)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx) {
		snprintf(err, errlen, "TLS: out of memory");
		return NULL;
	}
	ctx->ssl = SSL_CTX_new(TLS_client_method());
	if (!ctx->ssl) {
		ssl_reason(err, errlen, "TLS: cannot make a context", "unknown error");
		free(ctx);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
	/* A write may be retried with a moved buffer (the relay's ring compacts). */
	SSL_CTX_set_mode(ctx->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (ca_file ? SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
		char what[300];

		snprintf(what, sizeof(what), "TLS: cannot load the CA certificates%s%s",
			 ca_file ? " of " : "", ca_file ? ca_file : "");
		ssl_reason(err, errlen, what, "no certificate found");
		tls_ctx_destroy(ctx);
		return NULL;
	}
	return ctx;
}

void tls_ctx_destroy(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, const char *host, char *err,
			      size_t errlen)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "TLS: out of memory");
		return NULL;
	}
	c->ssl = SSL_new(ctx->ssl);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1 || SSL_set_tlsext_host_name(c->ssl, host) != 1 ||
	    SSL_set1_host(c->ssl, host) != 1) {
		ssl_reason(err, errlen, "TLS: cannot set up the connection", "unknown error");
		tls_conn_free(c);
		return NULL;
	}
	/* An IP literal is checked as an address, not a name. */
	SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	SSL_set_connect_state(c->ssl);
	return c;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	free(c);
}

/* What ret from an SSL_* call means: -EAGAIN (with c->want set), 0 at a clean end of
 * stream (reads), or -EPROTO / -EIO with c->err set. */
static int outcome(struct tls_conn *c, int ret, const char *what)
{
	int e = SSL_get_error(c->ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->want = EPOLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want = EPOLLOUT;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		snprintf(c->err, sizeof(c->err), "%s: %s", what,
			 errno ? strerror(errno) : "the peer closed the connection");
		ERR_clear_error();
		return -EIO;
	default: {
		long verify = SSL_get_verify_result(c->ssl);

		if (verify != X509_V_OK)
			snprintf(c->err, sizeof(c->err), "%s: the upstream's certificate: %s", what,
				 X509_verify_cert_error_string(verify));
		else
			ssl_reason(c->err, sizeof(c->err), what, "protocol error");
		return -EPROTO;
	}
	}
}

int tls_handshake(struct tls_conn *c)
{
	int ret;

	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(c->ssl);
	if (ret == 1)
		return 0;
	ret = outcome(c, ret, "TLS handshake");
	return ret == 0 ? -EPROTO : ret;
}

ssize_t tls_read(struct tls_conn *c, void *buf, size_t len)
{
	size_t n = 0;
	int ret;

	ERR_clear_error();
	errno = 0;
	ret = SSL_read_ex(c->ssl, buf, len, &n);
	if (ret == 1)
		return (ssize_t)n;
	return outcome(c, 0, "TLS read");
}

ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len)
{
	size_t n = 0;
	int ret;

	ERR_clear_error();
	errno = 0;
	ret = SSL_write_ex(c->ssl, buf, len, &n);
	if (ret == 1)
		return (ssize_t)n;
	ret = outcome(c, 0, "TLS write");
	return ret == 0 ? -EPIPE : ret;
}

int tls_pending(const struct tls_conn *c)
{
	return SSL_pending(c->ssl);
}

uint32_t tls_events(const struct tls_conn *c)
{
	return c->want;
}

const char *tls_error(const struct tls_conn *c)
{
	return c->err;
}
