/* A 16550A UART as Linux's 8250 driver sees it: transmit only (bytes leave at once, so the
 * transmitter is always empty), FIFO, scratch, loopback status, and the THR-empty
 * interrupt that keeps the driver sending. Knows nothing of KVM: interrupts and output go
 * through the callbacks. */
#ifndef CLAWVM_UART_H
#define CLAWVM_UART_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define UART_PORT_COUNT 8

struct uart_ops {
	void (*output)(void *opaque, uint8_t byte);
	void (*irq)(void *opaque); /* an edge on the UART's interrupt line */
};

struct uart {
	pthread_mutex_t lock;
	const struct uart_ops *ops;
	void *opaque;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	int thr_empty_pending; /* THR-empty interrupt raised and not yet read from IIR */
};

void uart_init(struct uart *u, const struct uart_ops *ops, void *opaque);
void uart_destroy(struct uart *u);
uint8_t uart_read(struct uart *u, unsigned offset);
void uart_write(struct uart *u, unsigned offset, uint8_t value);

#endif
