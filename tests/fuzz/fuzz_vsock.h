/* The input format of the vsock fuzz target, shared with its replay driver (gcc builds).
 *
 * Byte 0: flags (FUZZ_VSOCK_*). Then records, each a kind byte and its bytes:
 *   TX      le16 length L (capped), byte `split`, le16 `chain_len` for vsock_parse, L bytes:
 *           a packet put on the TX queue in up to three descriptors, and parsed directly
 *   RX      byte count, le16 size: that many writable RX buffers (size capped), an RX kick
 *   LOOP    byte n: the event loop run (n & 3) + 1 times without waiting
 *   HOST    byte which, byte L, L bytes: written by a host client (which & 1 == 0, a new
 *           client on the first use) or by the host end of a guest connection
 *   RESET   byte how: the driver resets the device (STATUS 0, as from a vCPU) and starts
 *           it again; with how & 1, while the event loop holds an event it took from epoll
 *           before the reset and dispatches after it (the reset race)
 * A record cut short ends the input. */
#ifndef CLAWVM_TESTS_FUZZ_VSOCK_H
#define CLAWVM_TESTS_FUZZ_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_VSOCK_HOST_SIDE 0x01 /* a Unix-socket host side in a temporary directory */
#define FUZZ_VSOCK_EVENT_IDX 0x02

enum {
	FUZZ_VSOCK_TX,
	FUZZ_VSOCK_RX,
	FUZZ_VSOCK_LOOP,
	FUZZ_VSOCK_HOST,
	FUZZ_VSOCK_RESET,
	FUZZ_VSOCK_KINDS
};

#define FUZZ_VSOCK_TX_MAX     8192
#define FUZZ_VSOCK_RX_MAX     8192
#define FUZZ_VSOCK_LISTEN     1024 /* the host port someone listens on */
#define FUZZ_VSOCK_GUEST_CID  3
#define FUZZ_VSOCK_MAX_RECORD 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
