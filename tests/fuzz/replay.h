/* The libFuzzer-less driver of the fuzz targets (gcc builds, CI under ASan/UBSan), shared by
 * every target: `NAME FILE...` replays inputs (crashes, a corpus); `NAME [RUNS [SEED]]` feeds
 * RUNS inputs made by the target's own generator, reproducible from the seed. */
#ifndef CLAWVM_TESTS_FUZZ_REPLAY_H
#define CLAWVM_TESTS_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* What a target's replay file provides. */
struct replay_target {
	const char *name;
	size_t input_cap;	    /* the largest input its generator makes */
	unsigned long default_runs; /* generated inputs without RUNS */
	/* Fills `in` (cap bytes) with one input shaped like what the target parses. */
	size_t (*generate)(uint8_t *in, size_t cap);
};
extern const struct replay_target replay_target;

/* xorshift64*, seeded by main: the generators' only source of randomness. */
uint64_t rnd(void);
uint64_t below(uint64_t n);

/* Mutates a JSON text of len bytes in in[cap] a few times (none to three): a token inserted
 * (one of tokens, or one of replay_json.c's own), a byte changed or dropped, the text cut
 * short, or up to cap/2 '[' inserted. Returns the new length (at most cap). */
size_t replay_mutate_json(uint8_t *in, size_t len, size_t cap, const char *const *tokens,
			  size_t ntokens);
/* One of the seeds (each shorter than cap), mutated so. */
size_t replay_generate_json(uint8_t *in, size_t cap, const char *const *seeds, size_t nseeds,
			    const char *const *tokens, size_t ntokens);

/* Copies one of the seeds (strings) into `in` and returns its length. */
size_t replay_seed(uint8_t *in, const char *const *seeds, size_t nseeds);

/* Mutations of in[0..len), a buffer of cap bytes, for the generators; each returns the new
 * length. replay_insert puts s[0..n) at `at` (nothing if it does not fit); replay_mutate does
 * one of: insert one of the tokens, overwrite a byte, cut the input short, drop a byte. */
size_t replay_insert(uint8_t *in, size_t len, size_t cap, size_t at, const void *s, size_t n);
size_t replay_mutate(uint8_t *in, size_t len, size_t cap, const char *const *tokens,
		     size_t ntokens);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
