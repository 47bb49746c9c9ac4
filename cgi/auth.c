#include "auth.h"

#include "../common/log.h"
#include "../common/priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/*
 * The keys as read, with what identifies the file version they came from. Any rewrite
 * changes the ctime (utimensat and `touch -r` can restore the mtime, never the ctime), and a
 * rename changes the inode. Timestamps have a coarse tick, so a rewrite within the tick of
 * the version we read could look the same: while the file's ctime is that close to our read
 * ("racy", as git calls it), each check also compares a hash of the contents.
 */
static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int loaded;
	int racy;
	uint64_t hash;
	size_t n, cap;
	char **keys;
	size_t *lens;
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

static void clear_keys(void)
{
	size_t i;

	for (i = 0; i < ak.n; i++) {
		explicit_bzero(ak.keys[i], ak.lens[i]);
		free(ak.keys[i]);
	}
	ak.n = 0;
}

static int add_key(const char *s, size_t len)
{
	if (ak.n == ak.cap) {
		size_t cap = ak.cap ? ak.cap * 2 : 16;
		char **k = realloc(ak.keys, cap * sizeof(*k));
		if (k == NULL)
			return -1;
		ak.keys = k;
		size_t *l = realloc(ak.lens, cap * sizeof(*l));
		if (l == NULL)
			return -1;
		ak.lens = l;
		ak.cap = cap;
	}
	if ((ak.keys[ak.n] = strndup(s, len)) == NULL)
		return -1;
	ak.lens[ak.n++] = len;
	return 0;
}

/* FNV-1a over the file. Returns 0, or -1 if it cannot be read. */
static int hash_file(const char *path, uint64_t *h)
{
	char buf[4096];
	size_t n, i;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		return -1;
	*h = 1469598103934665603ULL;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (i = 0; i < n; i++)
			*h = (*h ^ (unsigned char)buf[i]) * 1099511628211ULL;
	n = (size_t)ferror(f);
	fclose(f);
	return n ? -1 : 0;
}

static int same_version(const struct stat *st)
{
	return ak.loaded && st->st_dev == ak.dev && st->st_ino == ak.ino &&
	       st->st_size == ak.size && st->st_mtim.tv_sec == ak.mtime.tv_sec &&
	       st->st_mtim.tv_nsec == ak.mtime.tv_nsec && st->st_ctim.tv_sec == ak.ctime.tv_sec &&
	       st->st_ctim.tv_nsec == ak.ctime.tv_nsec;
}

/* Whether a change within the ctime's tick could still go unseen (2 s covers any tick). */
static int is_racy(const struct stat *st)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec - st->st_ctim.tv_sec < 2;
}

/*
 * Called with auth_mu held. Lines of any length (getline); a key line of AUTH_MAX_LEN bytes
 * or more, or under 16, is refused with file:line and loads nothing else from that line.
 */
static void reload(const char *path, const struct stat *st)
{
	char *line = NULL, why[1024] = "api_keys_file: fstat failed";
	size_t cap = 0, lineno = 0, refused = 0;
	struct stat fst;
	ssize_t len;
	FILE *f;

	clear_keys();
	ak.loaded = 1;
	ak.dev = st->st_dev;
	ak.ino = st->st_ino;
	ak.size = st->st_size;
	ak.mtime = st->st_mtim;
	ak.ctime = st->st_ctim;
	ak.racy = is_racy(st);
	if (hash_file(path, &ak.hash) < 0 || (f = fopen(path, "re")) == NULL) {
		log_err("api_keys_file %s: %s", path, strerror(errno));
		return;
	}
	if (fstat(fileno(f), &fst) < 0 ||
	    priv_secret_ok("api_keys_file", path, &fst, why, sizeof(why)) < 0) {
		log_err("%s: no key is accepted", why);
		fclose(f);
		return;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *s = line, *e = line + len;
		lineno++;
		while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s == e || *s == '#')
			continue;
		if (e - s >= AUTH_MAX_LEN || e - s < 16 || memchr(s, '\0', (size_t)(e - s))) {
			log_err(
			    "api_keys_file %s:%zu: refusing a key of %zd bytes: keys are 16 to %d "
			    "bytes on one line",
			    path, lineno, (ssize_t)(e - s), AUTH_MAX_LEN - 1);
			refused++;
			continue;
		}
		if (add_key(s, (size_t)(e - s)) < 0) {
			log_err("api_keys_file %s:%zu: out of memory", path, lineno);
			break;
		}
	}
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
	fclose(f);
	if (ak.n == 0)
		log_err("api_keys_file %s: no usable key (%zu refused): every request gets 401",
		        path, refused);
	else
		log_info("api_keys_file %s: %zu keys loaded, %zu refused", path, ak.n, refused);
}

int auth_check(const char *path, const char *key)
{
	struct stat st;
	size_t i, klen;
	uint64_t h;
	int ok = 0;

	if (key == NULL)
		key = "";
	klen = strnlen(key, AUTH_MAX_LEN);
	pthread_mutex_lock(&auth_mu);
	if (stat(path, &st) < 0) {
		if (ak.loaded || ak.n)
			log_err("api_keys_file %s: %s", path, strerror(errno));
		ak.loaded = 0;
		clear_keys();
	} else if (!same_version(&st)) {
		reload(path, &st);
	} else if (ak.racy) {
		if (hash_file(path, &h) < 0 || h != ak.hash)
			reload(path, &st);
		else
			ak.racy = is_racy(&st);
	}
	/* No early exit: every key is compared whatever matched. */
	for (i = 0; i < ak.n; i++)
		ok |= auth_equal(key, klen, ak.keys[i], ak.lens[i]) & (klen > 0);
	pthread_mutex_unlock(&auth_mu);
	return ok;
}

size_t auth_count(void)
{
	size_t n;

	pthread_mutex_lock(&auth_mu);
	n = ak.n;
	pthread_mutex_unlock(&auth_mu);
	return n;
}
