/* 16550A register model. Offsets 0-7 from the port base; DLAB in LCR switches 0 and 1 to
 * the divisor latch. */
#include <string.h>

#include "vmm/uart.h"

#define UART_RBR_THR 0
#define UART_IER     1
#define UART_IIR_FCR 2
#define UART_LCR     3
#define UART_MCR     4
#define UART_LSR     5
#define UART_MSR     6
#define UART_SCR     7

#define UART_LCR_DLAB	 0x80
#define UART_IER_THRI	 0x02
#define UART_IER_MASK	 0x0f
#define UART_IIR_NO_INT	 0x01
#define UART_IIR_THRI	 0x02
#define UART_IIR_FIFO_ON 0xc0
#define UART_FCR_ENABLE	 0x01
#define UART_LSR_THRE	 0x20
#define UART_LSR_TEMT	 0x40
#define UART_MCR_DTR	 0x01
#define UART_MCR_RTS	 0x02
#define UART_MCR_OUT1	 0x04
#define UART_MCR_OUT2	 0x08
#define UART_MCR_LOOP	 0x10
#define UART_MCR_MASK	 0x1f
#define UART_MSR_CTS	 0x10
#define UART_MSR_DSR	 0x20
#define UART_MSR_RI	 0x40
#define UART_MSR_DCD	 0x80

void uart_init(struct uart *u, const struct uart_ops *ops, void *opaque)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->ops = ops;
	u->opaque = opaque;
	u->mcr = UART_MCR_OUT2;
	u->dll = 12; /* 9600 baud, what a PC BIOS leaves */
}

void uart_destroy(struct uart *u)
{
	pthread_mutex_destroy(&u->lock);
}

/* The transmitter is empty again: interrupt if the driver asked to hear of it. */
static int uart_thr_empty(struct uart *u)
{
	if (!(u->ier & UART_IER_THRI))
		return 0;
	u->thr_empty_pending = 1;
	return 1;
}

static uint8_t uart_msr(const struct uart *u)
{
	if (u->mcr & UART_MCR_LOOP) {
		/* Loopback wires the modem outputs back to the inputs; the driver's probe
		 * checks this to tell a UART from an empty port. */
		return (u->mcr & UART_MCR_RTS ? UART_MSR_CTS : 0) |
		       (u->mcr & UART_MCR_DTR ? UART_MSR_DSR : 0) |
		       (u->mcr & UART_MCR_OUT1 ? UART_MSR_RI : 0) |
		       (u->mcr & UART_MCR_OUT2 ? UART_MSR_DCD : 0);
	}
	return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
}

uint8_t uart_read(struct uart *u, unsigned offset)
{
	uint8_t value = 0;

	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case UART_RBR_THR:
		value = u->lcr & UART_LCR_DLAB ? u->dll : 0; /* no input yet */
		break;
	case UART_IER:
		value = u->lcr & UART_LCR_DLAB ? u->dlm : u->ier;
		break;
	case UART_IIR_FCR:
		value = u->fcr & UART_FCR_ENABLE ? UART_IIR_FIFO_ON : 0;
		if (u->thr_empty_pending && (u->ier & UART_IER_THRI)) {
			value |= UART_IIR_THRI;
			u->thr_empty_pending = 0; /* reading IIR acknowledges THR empty */
		} else {
			value |= UART_IIR_NO_INT;
		}
		break;
	case UART_LCR:
		value = u->lcr;
		break;
	case UART_MCR:
		value = u->mcr;
		break;
	case UART_LSR:
		value = UART_LSR_THRE | UART_LSR_TEMT;
		break;
	case UART_MSR:
		value = uart_msr(u);
		break;
	case UART_SCR:
		value = u->scr;
		break;
	default:
		value = 0xff;
		break;
	}
	pthread_mutex_unlock(&u->lock);
	return value;
}

void uart_write(struct uart *u, unsigned offset, uint8_t value)
{
	int irq = 0;

	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case UART_RBR_THR:
		if (u->lcr & UART_LCR_DLAB) {
			u->dll = value;
			break;
		}
		if (!(u->mcr & UART_MCR_LOOP))
			u->ops->output(u->opaque, value);
		irq = uart_thr_empty(u);
		break;
	case UART_IER:
		if (u->lcr & UART_LCR_DLAB) {
			u->dlm = value;
			break;
		}
		u->ier = value & UART_IER_MASK;
		if (!(u->ier & UART_IER_THRI))
			u->thr_empty_pending = 0;
		irq = uart_thr_empty(u);
		break;
	case UART_IIR_FCR:
		u->fcr = value & UART_FCR_ENABLE;
		break;
	case UART_LCR:
		u->lcr = value;
		break;
	case UART_MCR:
		u->mcr = value & UART_MCR_MASK;
		break;
	case UART_SCR:
		u->scr = value;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	pthread_mutex_unlock(&u->lock);
	if (irq)
		u->ops->irq(u->opaque);
}
