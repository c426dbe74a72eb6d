/* Shared by the unit tests of the sandbox's configuration and what is built from it
 * (test_config, test_cgroup): one configuration and one error, made fresh for each test
 * (cmocka setup `fresh`) and released after it (teardown `release`). */
#ifndef CLAWVM_TESTS_CONFIG_FIXTURE_H
#define CLAWVM_TESTS_CONFIG_FIXTURE_H

#include <string.h>

#include "vmm/config.h"

static struct sandbox_config cfg;
static struct config_err err;

static int fresh(void **state)
{
	(void)state;
	config_init(&cfg);
	memset(&err, 0, sizeof(err));
	return 0;
}

static int release(void **state)
{
	(void)state;
	config_release(&cfg);
	return 0;
}

#endif
