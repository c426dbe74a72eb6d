/* The VMM's side of the audit log (vmm/egress.h): egress_send never blocks, and the events
 * its socket had no room for are counted and told to the log (a `lost` event) once there
 * is room again, before the next event. */
#include "unit.h"

#include <sys/socket.h>
#include <unistd.h>

#include "api/audit.h"
#include "base/log.h"
#include "vmm/egress.h"

static void lost_events_counted(void **state)
{
	const char *const argv[] = {"true", NULL};
	char msg[4096];
	int sv[2], sent = 0, dropped = 0;
	ssize_t n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){4096}, sizeof(int)), 0);
	/* Fill the socket: every send after it is full is dropped, none blocks. */
	log_silence();
	for (int i = 0; i < 2000; i++)
		egress_send(sv[0], audit_event_exec(argv, i % 256, 0, 1));
	/* Drained, then one more: first the count of those dropped, then the event. */
	while (recv(sv[1], msg, sizeof(msg), MSG_DONTWAIT) > 0)
		sent++;
	dropped = 2000 - sent;
	assert_true(sent > 0);
	assert_true(dropped > 0);
	egress_send(sv[0], audit_event_stop("exited", 0));
	n = recv(sv[1], msg, sizeof(msg) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	msg[n] = '\0';
	{
		char want[64];

		snprintf(want, sizeof(want), "{\"event\":\"lost\",\"count\":%d}", dropped);
		assert_string_equal(msg, want);
	}
	n = recv(sv[1], msg, sizeof(msg) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	msg[n] = '\0';
	assert_string_equal(msg, "{\"event\":\"stop\",\"reason\":\"exited\",\"status\":0}");
	/* Nothing lost since: no second count. */
	egress_send(sv[0], audit_event_stop("exited", 1));
	n = recv(sv[1], msg, sizeof(msg) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	msg[n] = '\0';
	assert_string_equal(msg, "{\"event\":\"stop\",\"reason\":\"exited\",\"status\":1}");
	/* No socket: nothing sent, nothing counted, the event freed (ASan). */
	egress_send(-1, audit_event_stop("exited", 2));
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lost_events_counted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
