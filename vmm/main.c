/* clawvm: one microVM per process. */
#include "vmm/cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
