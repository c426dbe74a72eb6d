/* The hostile guest program of the soak test (tests/soak/run): what its phases share. */
#ifndef CLAWVM_SOAK_HOSTILE_H
#define CLAWVM_SOAK_HOSTILE_H

#include <stdbool.h>
#include <stdint.h>

/* Milliseconds on the monotonic clock. */
uint64_t now_ms(void);
/* Lifts this process's open-file limit to at least `want` (the guest's root may). */
void raise_nofile(unsigned want);
/* "ENFILE" for ENFILE; "none" for 0. */
const char *errno_name(int err);

/* A small deterministic generator (xorshift64*): the same seed gives the same attack. */
struct rng64 {
	uint64_t state;
};
void rng_seed(struct rng64 *r, uint64_t seed);
uint64_t rng_next(struct rng64 *r);
/* Uniform enough in [0, n), n > 0. */
uint32_t rng_below(struct rng64 *r, uint32_t n);

#define MMIO_DEFAULT_SEED  1
#define MMIO_DEFAULT_SPARE "/spare"

/* The phases in hostile_mmio.c; each returns the program's exit status. */
int phase_mmio(unsigned seconds, uint64_t seed, const char *spare_mount);
int phase_vsock_reset(unsigned port, unsigned connections);

#endif
