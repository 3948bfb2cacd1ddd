/*
 * A PKCS#11 module for the fault tests: it forwards to SoftHSM2 but fails on
 * demand. While the file named by $KEEL_FAULTY_CONTROL exists, token calls
 * return CKR_DEVICE_ERROR; if the file says "pin", C_Login also answers
 * CKR_PIN_INCORRECT; if it says "hang", the token calls (encryption,
 * decryption, random) block until the file says otherwise, as an HSM that
 * stops answering. Test-only code, so it is the one place outside hsm/
 * that includes a PKCS#11 header: it has to be a module to stand in for one.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST shim;

/* 0: healthy, 1: device error, 2: device error and PIN refused, 3: hung. */
static int fault_mode(void)
{
	const char *path = getenv("KEEL_FAULTY_CONTROL");
	char buf[8] = "";
	int fd;

	if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return 0;
	}
	if (read(fd, buf, sizeof(buf) - 1) < 0) {
		buf[0] = '\0';
	}
	close(fd);
	return strncmp(buf, "pin", 3) == 0 ? 2 : strncmp(buf, "hang", 4) == 0 ? 3 : 1;
}

/* A hung token: the call returns once the control file stops saying "hang". */
static int hang_then_mode(void)
{
	const struct timespec tick = {0, 10 * 1000 * 1000};
	int mode;

	while ((mode = fault_mode()) == 3) {
		nanosleep(&tick, NULL);
	}
	return mode;
}

#define GUARD()                                                                                    \
	do {                                                                                       \
		if (hang_then_mode() != 0) {                                                       \
			return CKR_DEVICE_ERROR;                                                   \
		}                                                                                  \
	} while (0)

static CK_RV f_open_session(CK_SLOT_ID slot, CK_FLAGS flags, void *app, CK_NOTIFY notify,
			    CK_SESSION_HANDLE_PTR out)
{
	if (fault_mode() == 1) {
		return CKR_DEVICE_ERROR; /* in "pin" mode sessions open, so login is reached */
	}
	return real->C_OpenSession(slot, flags, app, notify, out);
}

static CK_RV f_login(CK_SESSION_HANDLE s, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	if (fault_mode() == 2) {
		return CKR_PIN_INCORRECT;
	}
	return real->C_Login(s, type, pin, len);
}

static CK_RV f_encrypt_init(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	GUARD();
	return real->C_EncryptInit(s, m, k);
}

static CK_RV f_decrypt_init(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	GUARD();
	return real->C_DecryptInit(s, m, k);
}

static CK_RV f_generate_random(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG len)
{
	GUARD();
	return real->C_GenerateRandom(s, out, len);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	CK_C_GetFunctionList get;
	void *dl;

	if (real == NULL) {
		if ((dl = dlopen(KEEL_SOFTHSM2_MODULE, RTLD_NOW | RTLD_LOCAL)) == NULL) {
			return CKR_GENERAL_ERROR;
		}
		*(void **)&get = dlsym(dl, "C_GetFunctionList");
		if (get == NULL || get(&real) != CKR_OK) {
			return CKR_GENERAL_ERROR;
		}
		shim = *real;
		shim.C_OpenSession = f_open_session;
		shim.C_Login = f_login;
		shim.C_EncryptInit = f_encrypt_init;
		shim.C_DecryptInit = f_decrypt_init;
		shim.C_GenerateRandom = f_generate_random;
	}
	*out = &shim;
	return CKR_OK;
}
