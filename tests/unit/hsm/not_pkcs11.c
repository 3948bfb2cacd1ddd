int keel_not_pkcs11(void);
int keel_not_pkcs11(void)
{
	return 0;
}
