/* The pure half of guest-init: parse a file of NUL-terminated strings the VMM appended to
 * the initramfs, turn a wait status into the status a shell would report. */
#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int command_argv_parse(char *buf, size_t len, char ***argv_out, size_t *argc_out, char *err,
		       size_t err_len)
{
	size_t argc = 0;
	char **argv;

	if (len == 0) {
		snprintf(err, err_len, "it is empty: it must hold at least the program name");
		return -ENODATA;
	}
	if (buf[len - 1] != '\0') {
		snprintf(err, err_len, "it does not end in a NUL byte (%zu bytes)", len);
		return -EINVAL;
	}
	if (buf[0] == '\0') {
		snprintf(err, err_len, "the program name (first string) is empty");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0')
			argc++;
	}

	argv = calloc(argc + 1, sizeof(*argv));
	if (!argv) {
		snprintf(err, err_len, "no memory for %zu arguments", argc);
		return -ENOMEM;
	}
	for (size_t i = 0, start = 0; i < argc; i++) {
		argv[i] = buf + start;
		start += strlen(buf + start) + 1;
	}
	argv[argc] = NULL;

	*argv_out = argv;
	*argc_out = argc;
	return 0;
}

/* Reads at most max_bytes + 1 bytes, so that a file that grew past its st_size, or one
 * whose size stat does not tell (a pipe in a test), is still refused when too big. */
static int read_bounded(int fd, size_t max_bytes, char **buf_out, size_t *len_out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *bigger;

			if (cap > max_bytes) {
				free(buf);
				return -E2BIG;
			}
			cap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
			bigger = realloc(buf, cap);
			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			free(buf);
			return -saved;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max_bytes) {
		free(buf);
		return -E2BIG;
	}
	*buf_out = buf;
	*len_out = len;
	return 0;
}

int command_argv_read(const char *path, size_t max_bytes, struct command_argv *out, char *err,
		      size_t err_len)
{
	char parse_err[128];
	char *buf = NULL;
	size_t len = 0;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, err_len, "open `%s`: %s", path, strerror(-ret));
		return ret;
	}
	ret = read_bounded(fd, max_bytes, &buf, &len);
	close(fd);
	if (ret == -E2BIG) {
		snprintf(err, err_len, "`%s` is larger than %zu bytes", path, max_bytes);
		return ret;
	}
	if (ret < 0) {
		snprintf(err, err_len, "read `%s`: %s", path, strerror(-ret));
		return ret;
	}

	ret = command_argv_parse(buf, len, &out->argv, &out->argc, parse_err, sizeof(parse_err));
	if (ret < 0) {
		snprintf(err, err_len, "`%s` is not a valid argv file: %s", path, parse_err);
		free(buf);
		return ret;
	}
	out->buf = buf;
	out->len = len;
	return 0;
}

void command_argv_release(struct command_argv *cmd)
{
	free(cmd->argv);
	free(cmd->buf);
	memset(cmd, 0, sizeof(*cmd));
}

int command_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return -1;
}

bool command_signal_forwarded(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
	case SIGHUP:
	case SIGQUIT:
	case SIGUSR1:
	case SIGUSR2:
		return true;
	default:
		return false;
	}
}
