/* Runs the vsock fuzz target without libFuzzer (gcc builds, CI under ASan/UBSan):
 *   fuzz_vsock_replay FILE...          replays inputs (crashes, a corpus)
 *   fuzz_vsock_replay [RUNS [SEED]]    RUNS generated inputs, 2000 by default
 * Generated inputs are scripts shaped like real traffic (fuzz_vsock.h): headers mostly from
 * the guest's CID to ours with valid ops, a few ports that connections use, payload lengths
 * mostly matching the packet, CONNECT lines from host clients, RX buffers of sizes around a
 * header; random bytes alone would be dropped by the header check and test nothing else. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_vsock.h"
#include "replay.h"

#define HDR 44

static void put_le(uint8_t *p, uint64_t value, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t some_port(void)
{
	static const uint32_t ports[] = {FUZZ_VSOCK_LISTEN, 1234,	   1235, 5000,
					 1u << 30,	    (1u << 30) + 1};

	return below(8) ? ports[below(sizeof(ports) / sizeof(ports[0]))] : (uint32_t)rnd();
}

/* One TX record at `p` (room for it checked by the caller); returns its size. */
static size_t gen_tx(uint8_t *p)
{
	uint8_t *h = p + 6;
	uint16_t op = below(16) ? 1 + (uint16_t)below(7) : (uint16_t)rnd();
	uint32_t payload = op == 5 ? (below(8) ? 1 + (uint32_t)below(300) : (uint32_t)below(4000))
				   : (below(16) ? 0 : (uint32_t)below(64));
	size_t len = HDR + payload, chain_len;

	if (!below(16))
		len = below(HDR + payload + 64); /* shorter or longer than it says */
	chain_len = below(4) ? len : below(HDR + 64);
	p[0] = FUZZ_VSOCK_TX;
	put_le(p + 1, len, 2);
	p[3] = (uint8_t)rnd();
	put_le(p + 4, chain_len, 2);
	memset(h, 0, len);
	for (size_t i = HDR; i < len; i++)
		h[i] = (uint8_t)rnd();
	if (len >= HDR) {
		put_le(h, below(32) ? FUZZ_VSOCK_GUEST_CID : rnd(), 8);
		put_le(h + 8, below(32) ? 2 : below(4), 8);
		put_le(h + 16, some_port(), 4);
		put_le(h + 20, some_port(), 4);
		put_le(h + 24, below(16) ? payload : (uint32_t)rnd(), 4);
		put_le(h + 28, below(32) ? 1 : below(4), 2);
		put_le(h + 30, op, 2);
		put_le(h + 32, below(4), 4);
		put_le(h + 36, below(4) ? 65536 : (uint32_t)rnd(), 4);
		put_le(h + 40, below(4) ? 0 : (uint32_t)rnd(), 4);
	} else {
		for (size_t i = 0; i < len; i++)
			h[i] = (uint8_t)rnd();
	}
	return 6 + len;
}

static size_t gen_host(uint8_t *p)
{
	static const char *const lines[] = {"CONNECT 1234\n", "CONNECT 5000\n", "CONNECT\n",
					    "CONNECT 99999999999\n", "HELLO 1\n"};
	size_t len;

	p[0] = FUZZ_VSOCK_HOST;
	p[1] = (uint8_t)(below(8) | (below(8) ? 0 : 0x80));
	if (!(p[1] & 1) && below(4)) {
		const char *line = lines[below(sizeof(lines) / sizeof(lines[0]))];

		len = strlen(line);
		memcpy(p + 3, line, len);
	} else {
		len = below(FUZZ_VSOCK_MAX_RECORD);
		for (size_t i = 0; i < len; i++)
			p[3 + i] = (uint8_t)rnd();
	}
	p[2] = (uint8_t)len;
	return 3 + len;
}

static size_t generate(uint8_t *in, size_t cap)
{
	static const uint16_t sizes[] = {16, HDR - 1, HDR, HDR + 1, 100, 4096, 8191};
	size_t len = 1;

	in[0] = (uint8_t)(below(4) ? 1 : 0) | (uint8_t)(below(2) ? 2 : 0);
	for (unsigned n = 1 + (unsigned)below(24); n > 0; n--) {
		if (cap - len < 8 + HDR + 4000 + 64)
			break;
		switch (below(9)) {
		case 0:
		case 1:
		case 2:
			len += gen_tx(in + len);
			break;
		case 3:
		case 4:
			in[len] = FUZZ_VSOCK_RX;
			in[len + 1] = (uint8_t)below(8);
			put_le(in + len + 2, below(4) ? sizes[below(7)] : rnd(), 2);
			len += 4;
			break;
		case 5:
		case 6:
			in[len] = FUZZ_VSOCK_LOOP;
			in[len + 1] = (uint8_t)rnd();
			len += 2;
			break;
		case 7:
			len += gen_host(in + len);
			break;
		default:
			in[len] = FUZZ_VSOCK_RESET;
			in[len + 1] = (uint8_t)rnd();
			len += 2;
		}
	}
	return len;
}

const struct replay_target replay_target = {"fuzz_vsock_replay", 1 << 17, 2000, generate};
