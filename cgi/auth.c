#include "auth.h"

#include "../common/log.h"
#include "../common/priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define AUTH_MAX_KEYS 64
#define AUTH_MAX_LEN 256

static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime; /* a chmod or chown also reloads */
	int loaded;
	size_t n;
	char keys[AUTH_MAX_KEYS][AUTH_MAX_LEN];
	size_t lens[AUTH_MAX_KEYS];
} ak;

int auth_equal(const char *given, size_t given_len, const char *want, size_t want_len)
{
	volatile unsigned char diff = (unsigned char)(given_len != want_len);
	size_t i;

	for (i = 0; i < want_len; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
		diff |= g ^ (unsigned char)want[i];
	}
	return diff == 0;
}

/* Called with auth_mu held. */
static void reload(const char *path, const struct stat *st)
{
	char line[1024], why[1024] = "api_keys_file: fstat failed";
	struct stat fst;
	FILE *f;
	int lineno = 0;

	ak.n = 0;
	ak.loaded = 1;
	ak.dev = st->st_dev;
	ak.ino = st->st_ino;
	ak.size = st->st_size;
	ak.mtime = st->st_mtim;
	ak.ctime = st->st_ctim;
	if ((f = fopen(path, "re")) == NULL) {
		log_err("api_keys_file %s: %s", path, strerror(errno));
		return;
	}
	if (fstat(fileno(f), &fst) < 0 ||
	    priv_secret_ok("api_keys_file", path, &fst, why, sizeof(why)) < 0) {
		log_err("%s: no key is accepted", why);
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL && ak.n < AUTH_MAX_KEYS) {
		char *s = line, *e;
		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strcspn(s, "\r\n");
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		if (*s == '\0' || *s == '#')
			continue;
		if ((size_t)(e - s) >= AUTH_MAX_LEN || e - s < 16) {
			log_warn(
			    "api_keys_file %s:%d: skipping a key of %d bytes: keys are 16 to %d "
			    "bytes long",
			    path, lineno, (int)(e - s), AUTH_MAX_LEN - 1);
			continue;
		}
		memcpy(ak.keys[ak.n], s, (size_t)(e - s) + 1);
		ak.lens[ak.n] = (size_t)(e - s);
		ak.n++;
	}
	fclose(f);
	if (ak.n == 0)
		log_err("api_keys_file %s: no usable key: every request gets 401", path);
	else
		log_info("api_keys_file %s: %zu keys loaded", path, ak.n);
}

int auth_check(const char *path, const char *key)
{
	struct stat st;
	size_t i, klen;
	int ok = 0;

	if (key == NULL)
		key = "";
	klen = strnlen(key, AUTH_MAX_LEN);
	pthread_mutex_lock(&auth_mu);
	if (stat(path, &st) < 0) {
		if (ak.loaded || ak.n)
			log_err("api_keys_file %s: %s", path, strerror(errno));
		ak.loaded = 0;
		ak.n = 0;
	} else if (!ak.loaded || st.st_dev != ak.dev || st.st_ino != ak.ino ||
	           st.st_size != ak.size || st.st_mtim.tv_sec != ak.mtime.tv_sec ||
	           st.st_mtim.tv_nsec != ak.mtime.tv_nsec || st.st_ctim.tv_sec != ak.ctime.tv_sec ||
	           st.st_ctim.tv_nsec != ak.ctime.tv_nsec) {
		reload(path, &st);
	}
	/* No early exit: every key is compared whatever matched. */
	for (i = 0; i < ak.n; i++)
		ok |= auth_equal(key, klen, ak.keys[i], ak.lens[i]) & (klen > 0);
	pthread_mutex_unlock(&auth_mu);
	return ok;
}
