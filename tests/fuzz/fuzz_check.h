/* The fuzz targets' CHECK: a promise of the code under test that an input broke aborts, naming
 * where and what, so that libFuzzer (or the replay driver, by its seed) keeps the input. */
#ifndef CLAWVM_TESTS_FUZZ_CHECK_H
#define CLAWVM_TESTS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
