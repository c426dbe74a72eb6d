/* main() of the replay drivers (replay.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

static uint64_t rng_state;

uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed alone. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

uint64_t below(uint64_t n)
{
	return rnd() % n;
}

size_t replay_seed(uint8_t *in, const char *const *seeds, size_t nseeds)
{
	const char *seed = seeds[below(nseeds)];
	size_t len = strlen(seed);

	memcpy(in, seed, len);
	return len;
}

size_t replay_insert(uint8_t *in, size_t len, size_t cap, size_t at, const void *s, size_t n)
{
	if (len + n > cap)
		return len;
	memmove(in + at + n, in + at, len - at);
	memcpy(in + at, s, n);
	return len + n;
}

size_t replay_mutate(uint8_t *in, size_t len, size_t cap, const char *const *tokens, size_t ntokens)
{
	size_t at = below(len + 1);
	const char *token = tokens[below(ntokens)];

	switch (below(5)) {
	case 0:
	case 1:
		return replay_insert(in, len, cap, at, token, strlen(token));
	case 2:
		if (at < len)
			in[at] = (uint8_t)rnd();
		return len;
	case 3:
		return at; /* cut short */
	default:
		if (at < len) { /* drop a byte */
			memmove(in + at, in + at + 1, len - at - 1);
			len--;
		}
		return len;
	}
}

static int replay_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t len;

	if (!f) {
		perror(path);
		return 1;
	}
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long runs = replay_target.default_runs, seed = 1;
	uint8_t *input;
	char *end;

	if (argc > 1) {
		runs = strtoul(argv[1], &end, 10);
		if (*end) {
			int failed = 0;

			for (int i = 1; i < argc; i++)
				failed |= replay_file(argv[i]);
			return failed;
		}
	}
	if (argc > 2)
		seed = strtoul(argv[2], NULL, 10);
	input = malloc(replay_target.input_cap);
	if (!input)
		return 1;
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (unsigned long i = 0; i < runs; i++)
		LLVMFuzzerTestOneInput(input,
				       replay_target.generate(input, replay_target.input_cap));
	printf("%s: %lu generated inputs (seed %lu), no failure\n", replay_target.name, runs, seed);
	free(input);
	return 0;
}
