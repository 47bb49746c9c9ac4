/*
 * libcurl, loaded on first use. pmacache-sync is not linked with libcurl: an import (--csv)
 * never speaks HTTP, and libcurl brings some thirty libraries (TLS, Kerberos, LDAP, SSH, ...)
 * whose loading cost every run 6 ms and 6.7 MB of its RSS. The definitions below stand in for
 * libcurl's own functions, so the rest of the sync is plain libcurl code; the first call
 * dlopen()s libcurl and each one forwards to it.
 */
#define CURL_DISABLE_TYPECHECK /* the definitions below are the functions themselves */
#include "../common/log.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

#define CURL_SONAME "libcurl.so.4"

static struct {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	void (*easy_reset)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	char *(*easy_escape)(CURL *, const char *, int);
	void (*free)(void *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} lib;

static int loaded; /* 1: every function found */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* POSIX's way to store dlsym's answer in a function pointer. */
#define FIND(h, field, name) (*(void **)(&lib.field) = dlsym((h), (name))) != NULL

static void load(void)
{
	void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (h == NULL) {
		log_err("cannot load libcurl (package libcurl4): %s", dlerror());
		return;
	}
	if (FIND(h, easy_init, "curl_easy_init") && FIND(h, easy_setopt, "curl_easy_setopt") &&
	    FIND(h, easy_perform, "curl_easy_perform") &&
	    FIND(h, easy_getinfo, "curl_easy_getinfo") &&
	    FIND(h, easy_cleanup, "curl_easy_cleanup") && FIND(h, easy_reset, "curl_easy_reset") &&
	    FIND(h, easy_strerror, "curl_easy_strerror") &&
	    FIND(h, easy_escape, "curl_easy_escape") && FIND(h, free, "curl_free") &&
	    FIND(h, slist_append, "curl_slist_append") &&
	    FIND(h, slist_free_all, "curl_slist_free_all")) {
		loaded = 1;
		return;
	}
	log_err("%s lacks a function the sync uses: %s", CURL_SONAME, dlerror());
}

static int ready(void)
{
	pthread_once(&once, load);
	return loaded;
}

/* Every other function takes a handle or a list that only curl_easy_init or
 * curl_slist_append made: they cannot be called before libcurl is loaded. */
CURL *curl_easy_init(void)
{
	return ready() ? lib.easy_init() : NULL;
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	return ready() ? lib.slist_append(list, s) : NULL;
}

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	CURLcode rc;
	va_list ap;

	if (!ready())
		return CURLE_FAILED_INIT;
	/* The option's number says its argument's type (curl.h's CURLOPTTYPE_*). */
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = lib.easy_setopt(h, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = lib.easy_setopt(h, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = lib.easy_setopt(h, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = lib.easy_setopt(h, opt, va_arg(ap, curl_off_t));
	else
		rc = lib.easy_setopt(h, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	CURLcode rc;
	va_list ap;

	if (!ready())
		return CURLE_FAILED_INIT;
	va_start(ap, info); /* always a pointer to where the answer goes */
	rc = lib.easy_getinfo(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_perform(CURL *h)
{
	return ready() ? lib.easy_perform(h) : CURLE_FAILED_INIT;
}

void curl_easy_cleanup(CURL *h)
{
	if (ready())
		lib.easy_cleanup(h);
}

void curl_easy_reset(CURL *h)
{
	if (ready())
		lib.easy_reset(h);
}

const char *curl_easy_strerror(CURLcode code)
{
	return ready() ? lib.easy_strerror(code) : "libcurl could not be loaded (see the log)";
}

char *curl_easy_escape(CURL *h, const char *s, int len)
{
	return ready() ? lib.easy_escape(h, s, len) : NULL;
}

void curl_free(void *p)
{
	if (ready())
		lib.free(p);
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (ready())
		lib.slist_free_all(list);
}
