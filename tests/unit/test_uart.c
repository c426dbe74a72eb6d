/* The 16550A model driven the way Linux's 8250 driver drives it, with fake callbacks that
 * record output bytes and interrupt edges. */
#include "unit.h"

#include "vmm/uart.h"

/* Register offsets and bits, from the 16550A data sheet. */
enum { THR, IER, IIR, LCR, MCR, LSR, MSR, SCR };
#define FCR	 IIR
#define DLL	 THR
#define DLM	 IER
#define LCR_DLAB 0x80
#define LCR_8N1	 0x03
#define IER_RDI	 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_FIFO 0xc0
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MSR_CTS	 0x10
#define MSR_DSR	 0x20
#define MSR_RI	 0x40
#define MSR_DCD	 0x80

struct fake_port {
	struct uart uart;
	uint8_t out[64];
	size_t nout;
	unsigned irqs;
};

static void fake_output(void *opaque, uint8_t byte)
{
	struct fake_port *p = opaque;

	assert_true(p->nout < sizeof(p->out));
	p->out[p->nout++] = byte;
}

static void fake_irq(void *opaque)
{
	struct fake_port *p = opaque;

	p->irqs++;
}

static const struct uart_ops fake_ops = {.output = fake_output, .irq = fake_irq};

static int port_setup(void **state)
{
	struct fake_port *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	uart_init(&p->uart, &fake_ops, p);
	*state = p;
	return 0;
}

static int port_teardown(void **state)
{
	struct fake_port *p = *state;

	uart_destroy(&p->uart);
	free(p);
	return 0;
}

static void reset_state(void **state)
{
	struct fake_port *p = *state;

	assert_int_equal(uart_read(&p->uart, IER), 0);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_NONE);
	assert_int_equal(uart_read(&p->uart, LCR), 0);
	assert_int_equal(uart_read(&p->uart, MCR), MCR_OUT2);
	assert_int_equal(uart_read(&p->uart, LSR), LSR_THRE | LSR_TEMT);
	assert_int_equal(uart_read(&p->uart, MSR), MSR_DCD | MSR_DSR | MSR_CTS);
	assert_int_equal(uart_read(&p->uart, THR), 0); /* nothing received */
	assert_int_equal(p->nout, 0);
	assert_int_equal(p->irqs, 0);
}

static void thr_writes_reach_output(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, THR, 'h');
	uart_write(&p->uart, THR, 'i');
	uart_write(&p->uart, THR, 0);
	uart_write(&p->uart, THR, 0xff);
	assert_int_equal(p->nout, 4);
	assert_memory_equal(p->out, "hi\0\xff", 4);
	/* Interrupts were not enabled. */
	assert_int_equal(p->irqs, 0);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_NONE);
}

static void dlab_selects_divisor_latch(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, LCR, LCR_DLAB | LCR_8N1);
	assert_int_equal(uart_read(&p->uart, DLL), 12); /* 9600 baud, as a BIOS leaves it */
	assert_int_equal(uart_read(&p->uart, DLM), 0);
	uart_write(&p->uart, DLL, 0x01); /* 115200 baud */
	uart_write(&p->uart, DLM, 0x02);
	assert_int_equal(uart_read(&p->uart, DLL), 0x01);
	assert_int_equal(uart_read(&p->uart, DLM), 0x02);
	assert_int_equal(uart_read(&p->uart, LCR), LCR_DLAB | LCR_8N1);
	/* Neither a byte sent nor interrupts enabled by the latch writes. */
	assert_int_equal(p->nout, 0);
	assert_int_equal(p->irqs, 0);

	uart_write(&p->uart, LCR, LCR_8N1);
	assert_int_equal(uart_read(&p->uart, IER), 0);
	assert_int_equal(uart_read(&p->uart, THR), 0);
	uart_write(&p->uart, THR, 'x');
	assert_int_equal(p->nout, 1);
	assert_int_equal(p->out[0], 'x');
	/* The latch kept its value while DLAB was clear. */
	uart_write(&p->uart, LCR, LCR_DLAB);
	assert_int_equal(uart_read(&p->uart, DLL), 0x01);
	assert_int_equal(uart_read(&p->uart, DLM), 0x02);
}

static void dlab_ier_write_does_not_enable(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, LCR, LCR_DLAB);
	uart_write(&p->uart, DLM, IER_THRI);
	assert_int_equal(p->irqs, 0);
	uart_write(&p->uart, LCR, 0);
	assert_int_equal(uart_read(&p->uart, IER), 0);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_NONE);
}

static void thri_enable_raises_edge(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, IER, IER_RDI);
	assert_int_equal(p->irqs, 0);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_NONE);
	uart_write(&p->uart, IER, IER_RDI | IER_THRI);
	assert_int_equal(p->irqs, 1);
	assert_int_equal(uart_read(&p->uart, IER), IER_RDI | IER_THRI);
	/* Reading IIR acknowledges the THR-empty interrupt: reported once. */
	assert_int_equal(uart_read(&p->uart, IIR), IIR_THRI);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_NONE);
	assert_int_equal(p->irqs, 1);
}

static void thr_write_raises_edge_when_enabled(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, IER, IER_THRI);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_THRI);
	for (unsigned i = 0; i < 3; i++) {
		uart_write(&p->uart, THR, (uint8_t)('a' + i));
		assert_int_equal(p->irqs, 2 + i);
		assert_int_equal(uart_read(&p->uart, IIR), IIR_THRI);
		assert_int_equal(uart_read(&p->uart, IIR), IIR_NONE);
	}
	assert_memory_equal(p->out, "abc", 3);
}

static void iir_fifo_bits(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, FCR, 0x07); /* enable, clear both FIFOs */
	assert_int_equal(uart_read(&p->uart, IIR), IIR_FIFO | IIR_NONE);
	uart_write(&p->uart, IER, IER_THRI);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_FIFO | IIR_THRI);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_FIFO | IIR_NONE);
	uart_write(&p->uart, FCR, 0);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_NONE);
}

static void disabling_thri_drops_pending(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, IER, IER_THRI);
	uart_write(&p->uart, IER, 0);
	assert_int_equal(p->irqs, 1);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_NONE);
	/* Re-enabling raises a fresh one. */
	uart_write(&p->uart, IER, IER_THRI);
	assert_int_equal(p->irqs, 2);
	assert_int_equal(uart_read(&p->uart, IIR), IIR_THRI);
}

static void ier_keeps_low_nibble(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, IER, 0xff);
	assert_int_equal(uart_read(&p->uart, IER), 0x0f);
	uart_write(&p->uart, IER, 0xf0);
	assert_int_equal(uart_read(&p->uart, IER), 0);
}

static void lsr_always_empty(void **state)
{
	struct fake_port *p = *state;

	for (unsigned i = 0; i < 40; i++)
		uart_write(&p->uart, THR, '.');
	assert_int_equal(uart_read(&p->uart, LSR), LSR_THRE | LSR_TEMT);
	uart_write(&p->uart, LSR, 0);
	assert_int_equal(uart_read(&p->uart, LSR), LSR_THRE | LSR_TEMT);
	uart_write(&p->uart, LCR, LCR_DLAB);
	assert_int_equal(uart_read(&p->uart, LSR), LSR_THRE | LSR_TEMT);
	uart_write(&p->uart, MCR, MCR_LOOP);
	assert_int_equal(uart_read(&p->uart, LSR), LSR_THRE | LSR_TEMT);
}

static void scratch_round_trip(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, SCR, 0x5a);
	assert_int_equal(uart_read(&p->uart, SCR), 0x5a);
	uart_write(&p->uart, SCR, 0xa5);
	assert_int_equal(uart_read(&p->uart, SCR), 0xa5);
	/* DLAB does not affect the scratch register. */
	uart_write(&p->uart, LCR, LCR_DLAB);
	assert_int_equal(uart_read(&p->uart, SCR), 0xa5);
	assert_int_equal(p->nout, 0);
}

static void loopback_mirrors_mcr(void **state)
{
	static const struct {
		uint8_t mcr, msr;
	} cases[] = {
	    {MCR_LOOP, 0},
	    {MCR_LOOP | MCR_RTS, MSR_CTS},
	    {MCR_LOOP | MCR_DTR, MSR_DSR},
	    {MCR_LOOP | MCR_OUT1, MSR_RI},
	    {MCR_LOOP | MCR_OUT2, MSR_DCD},
	    {MCR_LOOP | MCR_OUT2 | MCR_RTS, MSR_DCD | MSR_CTS}, /* Linux's 8250 probe */
	    {MCR_LOOP | 0x0f, MSR_CTS | MSR_DSR | MSR_RI | MSR_DCD},
	};
	struct fake_port *p = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uart_write(&p->uart, MCR, cases[i].mcr);
		assert_int_equal(uart_read(&p->uart, MCR), cases[i].mcr);
		assert_int_equal(uart_read(&p->uart, MSR) & 0xf0, cases[i].msr);
	}
	/* In loopback nothing reaches the line. */
	uart_write(&p->uart, THR, 'x');
	assert_int_equal(p->nout, 0);
	/* Out of loopback the modem lines are up whatever MCR says. */
	uart_write(&p->uart, MCR, 0);
	assert_int_equal(uart_read(&p->uart, MSR) & 0xf0, MSR_DCD | MSR_DSR | MSR_CTS);
	uart_write(&p->uart, THR, 'y');
	assert_int_equal(p->nout, 1);
	assert_int_equal(p->out[0], 'y');
}

static void mcr_masked(void **state)
{
	struct fake_port *p = *state;

	uart_write(&p->uart, MCR, 0xff);
	assert_int_equal(uart_read(&p->uart, MCR), 0x1f);
}

static void out_of_range_offsets(void **state)
{
	struct fake_port *p = *state;

	assert_int_equal(uart_read(&p->uart, 8), 0xff);
	assert_int_equal(uart_read(&p->uart, 9), 0xff);
	assert_int_equal(uart_read(&p->uart, 255), 0xff);
	assert_int_equal(uart_read(&p->uart, 0xffffffffu), 0xff);
	uart_write(&p->uart, 8, 'z');
	uart_write(&p->uart, 0xffffffffu, 'z');
	uart_write(&p->uart, MSR, 0);
	assert_int_equal(p->nout, 0);
	assert_int_equal(p->irqs, 0);
	assert_int_equal(uart_read(&p->uart, SCR), 0);
	assert_int_equal(uart_read(&p->uart, MSR), MSR_DCD | MSR_DSR | MSR_CTS);
}

#define PORT_TEST(f) cmocka_unit_test_setup_teardown(f, port_setup, port_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    PORT_TEST(reset_state),
	    PORT_TEST(thr_writes_reach_output),
	    PORT_TEST(dlab_selects_divisor_latch),
	    PORT_TEST(dlab_ier_write_does_not_enable),
	    PORT_TEST(thri_enable_raises_edge),
	    PORT_TEST(thr_write_raises_edge_when_enabled),
	    PORT_TEST(iir_fifo_bits),
	    PORT_TEST(disabling_thri_drops_pending),
	    PORT_TEST(ier_keeps_low_nibble),
	    PORT_TEST(lsr_always_empty),
	    PORT_TEST(scratch_round_trip),
	    PORT_TEST(loopback_mirrors_mcr),
	    PORT_TEST(mcr_masked),
	    PORT_TEST(out_of_range_offsets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
