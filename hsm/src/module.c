/*
 * Loading a PKCS#11 module. A p11-kit module name is resolved to its file
 * through the p11-kit registry; a path is taken as is. Either way the file is
 * dlopen'ed here and C_Initialize'd once per process with OS locking, as
 * PKCS#11 v2.40 §5.4 requires for multi-threaded callers. Several hsm_open
 * calls on one module share it; the last hsm_close finalizes it.
 */
#include "hsm_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <p11-kit/p11-kit.h>

struct hsm_module {
	struct hsm_module *next;
	void *dl;
	CK_FUNCTION_LIST_PTR p11;
	char *path;
	unsigned refs;
	unsigned gen;	    /* bumped by every re-initialization */
	bool finalize;	    /* we initialized it, so we finalize it */
	bool reinit_failed; /* ours, finalized, and C_Initialize failed since */
};

static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hsm_module *modules;

/* The file of a module registered with p11-kit (p11-kit(8) module configs). */
static int module_resolve_name(struct hsm *h, const char *name, char **out_path)
{
	CK_FUNCTION_LIST **all = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
	CK_FUNCTION_LIST *m;
	int r = HSM_E_MODULE_NOT_FOUND;

	*out_path = NULL;
	if (all == NULL) {
		hsm_log(h, HSM_LOG_ERROR, "p11-kit: cannot load the module registry: %s",
			p11_kit_message());
		goto out;
	}
	if ((m = p11_kit_module_for_name(all, name)) == NULL) {
		hsm_log(h, HSM_LOG_ERROR, "p11-kit: no module named \"%s\" is registered", name);
		goto out;
	}
	if ((*out_path = p11_kit_module_get_filename(m)) == NULL) {
		r = HSM_E_NOMEM;
		goto out;
	}
	r = 0;
out:
	if (all != NULL) {
		p11_kit_modules_release(all);
	}
	return r;
}

static int module_dlopen(struct hsm *h, const char *path, void **out_dl,
			 CK_FUNCTION_LIST_PTR *out_p11)
{
	CK_C_GetFunctionList get;
	struct stat st;
	void *dl = NULL;
	CK_RV rv;
	int r = HSM_E_MODULE_NOT_FOUND;

	if (stat(path, &st) != 0) {
		hsm_log(h, HSM_LOG_ERROR, "PKCS#11 module %s: %s", path, strerror(errno));
		goto out;
	}
	r = HSM_E_MODULE_INVALID;
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		hsm_log(h, HSM_LOG_ERROR, "PKCS#11 module %s: cannot load: %s", path, dlerror());
		goto out;
	}
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL) {
		hsm_log(h, HSM_LOG_ERROR, "%s is not a PKCS#11 module (no C_GetFunctionList)",
			path);
		goto out;
	}
	if ((rv = get(out_p11)) != CKR_OK || *out_p11 == NULL) {
		hsm_log(h, HSM_LOG_ERROR, "%s: C_GetFunctionList: %s", path, hsm_rv_name(rv));
		goto out;
	}
	*out_dl = dl;
	dl = NULL;
	r = 0;
out:
	if (dl != NULL) {
		dlclose(dl);
	}
	return r;
}

static int module_init(struct hsm *h, struct hsm_module *m)
{
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_RV rv = m->p11->C_Initialize(&args);

	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/* Someone else in this process owns it; leave finalizing to them. */
		hsm_log(h, HSM_LOG_INFO, "%s: already initialized in this process", m->path);
		return 0;
	}
	if (rv != CKR_OK) {
		hsm_ck_fail(h, "C_Initialize", rv);
		return HSM_E_MODULE_INIT;
	}
	m->finalize = true;
	return 0;
}

/* Called with modules_mu held. */
static int module_new(struct hsm *h, char *path, struct hsm_module **out_mod)
{
	struct hsm_module *m = NULL;
	int r = HSM_E_NOMEM;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		goto out;
	}
	m->path = path;
	path = NULL;
	if ((r = module_dlopen(h, m->path, &m->dl, &m->p11)) != 0 || (r = module_init(h, m)) != 0) {
		goto out;
	}
	m->refs = 1;
	m->next = modules;
	modules = m;
	*out_mod = m;
	m = NULL;
out:
	if (m != NULL) {
		if (m->dl != NULL) {
			dlclose(m->dl);
		}
		free(m->path);
		free(m);
	}
	free(path);
	return r;
}

int hsm_module_load(struct hsm *h, const char *name_or_path, struct hsm_module **out_mod)
{
	char *path = NULL, *real = NULL;
	struct hsm_module *m;
	int r;

	*out_mod = NULL;
	if (strchr(name_or_path, '/') != NULL) {
		r = (path = strdup(name_or_path)) != NULL ? 0 : HSM_E_NOMEM;
	} else {
		r = module_resolve_name(h, name_or_path, &path);
	}
	if (r != 0) {
		goto out;
	}
	/* One entry per file, however it was named. */
	if ((real = realpath(path, NULL)) != NULL) {
		free(path);
		path = real;
	}
	pthread_mutex_lock(&modules_mu);
	for (m = modules; m != NULL && strcmp(m->path, path) != 0; m = m->next) {
	}
	if (m != NULL) {
		m->refs++;
		*out_mod = m;
	} else {
		r = module_new(h, path, out_mod);
		path = NULL;
	}
	pthread_mutex_unlock(&modules_mu);
out:
	free(path);
	return r;
}

void hsm_module_unload(struct hsm_module *mod)
{
	struct hsm_module **pp;

	if (mod == NULL) {
		return;
	}
	pthread_mutex_lock(&modules_mu);
	if (--mod->refs == 0) {
		for (pp = &modules; *pp != mod; pp = &(*pp)->next) {
		}
		*pp = mod->next;
		if (mod->finalize) {
			mod->p11->C_Finalize(NULL);
		}
		dlclose(mod->dl);
		free(mod->path);
		free(mod);
	}
	pthread_mutex_unlock(&modules_mu);
}

CK_FUNCTION_LIST_PTR hsm_module_functions(const struct hsm_module *mod)
{
	return mod->p11;
}

const char *hsm_module_path(const struct hsm_module *mod)
{
	return mod->path;
}

/*
 * Some modules (SoftHSM among them) fix their slot list at C_Initialize, so a
 * token that went away and came back is only seen after C_Finalize and
 * C_Initialize. Sessions of other handles on this module die with it and they
 * recover in turn; *gen makes sure one outage re-initializes once, not once
 * per handle.
 */
int hsm_module_reinit(struct hsm *h, struct hsm_module *mod, unsigned *gen)
{
	int r = 0;

	pthread_mutex_lock(&modules_mu);
	if (mod->gen == *gen) {
		if (!mod->finalize && !mod->reinit_failed) {
			r = HSM_E_TOKEN_UNAVAILABLE; /* not ours to re-initialize */
		} else {
			if (mod->finalize) {
				(void)mod->p11->C_Finalize(NULL);
			}
			mod->finalize = false;
			/* SoftHSM refuses C_Initialize while its token directory is
			 * gone: the next recovery must try again, not give up. */
			r = module_init(h, mod);
			mod->reinit_failed = r != 0;
			mod->gen++;
			hsm_log(h, r == 0 ? HSM_LOG_INFO : HSM_LOG_WARNING, "%s: module %s",
				mod->path,
				r == 0 ? "re-initialized"
				       : "not re-initialized; retried at the next recovery");
		}
	}
	*gen = mod->gen;
	pthread_mutex_unlock(&modules_mu);
	return r;
}

unsigned hsm_module_gen(const struct hsm_module *mod)
{
	unsigned gen;

	pthread_mutex_lock(&modules_mu);
	gen = mod->gen;
	pthread_mutex_unlock(&modules_mu);
	return gen;
}
