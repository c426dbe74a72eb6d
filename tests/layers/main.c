/* The whole of one layer's library is linked into this empty program with the libraries
 * of the layers below it, and nothing else (tests/layers/meson.build): a call from the
 * layer to one above it is an undefined symbol, and the build fails. */
int main(void)
{
	return 0;
}
