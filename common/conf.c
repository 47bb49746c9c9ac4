#include "conf.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum conf_type { CT_STR, CT_PATH, CT_INT, CT_SIZE, CT_RATIO, CT_LISTEN, CT_ORIGINS };

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;  /* offset of the field in struct conf */
	size_t size; /* size of a string field */
	long min, max;
	const char *dflt; /* NULL: no default; "" with required: must be given */
	int required;
};

#define S(f) offsetof(struct conf, f), sizeof(((struct conf *)0)->f)
#define I(f) offsetof(struct conf, f), 0

static const struct conf_key conf_keys[] = {
    {"listen", CT_LISTEN, S(listen), 0, 0, "127.0.0.1:8080", 0},
    {"cache_dir", CT_PATH, S(cache_dir), 0, 0, NULL, 1},
    {"run_dir", CT_PATH, S(run_dir), 0, 0, "run", 0},
    {"log_dir", CT_PATH, S(log_dir), 0, 0, NULL, 0},
    {"log_syslog", CT_INT, I(log_syslog), 0, 1, "0", 0},
    {"api_keys_file", CT_PATH, S(api_keys_file), 0, 0, NULL, 1},
    {"sync_bin", CT_PATH, S(sync_bin), 0, 0, NULL, 0},
    {"location_prefix", CT_STR, S(location_prefix), 0, 0, "/", 0},
    {"user", CT_STR, S(user), 0, 0, "pmacache", 0},
    {"group", CT_STR, S(group), 0, 0, "pmacache", 0},
    {"workers", CT_INT, I(workers), 1, 64, "2", 0},
    {"threads", CT_INT, I(threads), 2, 1024, "128", 0},
    {"sse_heartbeat_s", CT_INT, I(sse_heartbeat_s), 1, 3600, "15", 0},
    {"sse_max_streams", CT_INT, I(sse_max_streams), 1, 100000, "100", 0},
    {"sse_retry_ms", CT_INT, I(sse_retry_ms), 0, 3600000, "3000", 0},
    {"limit_bad_keys_per_min", CT_INT, I(limit_bad_keys_per_min), 1, 1000000, "60", 0},
    {"limit_bad_keys_burst", CT_INT, I(limit_bad_keys_burst), 0, 1000000, "20", 0},
    {"limit_refresh_per_min", CT_INT, I(limit_refresh_per_min), 1, 1000000, "12", 0},
    {"limit_refresh_burst", CT_INT, I(limit_refresh_burst), 0, 1000000, "5", 0},
    {"limit_streams_per_client", CT_INT, I(limit_streams_per_client), 1, 100000, "10", 0},
    {"cors_origins", CT_ORIGINS, S(cors_origins), 0, 0, "", 0},
    {"limit_conn_per_client", CT_INT, I(limit_conn_per_client), 1, 65535, "32", 0},
    {"sync_timeout", CT_INT, I(sync_timeout), 5, 86400, "300", 0},
    {"min_rows_ratio", CT_RATIO, I(min_rows_ratio), 0, 1, "0.5", 0},
    {"max_field_bytes", CT_SIZE, I(max_field_bytes), 1024, 1024L * 1024 * 1024, "16M", 0},
    {"id_column", CT_STR, S(id_column), 0, 0, "id", 0},
    {"updated_column", CT_STR, S(updated_column), 0, 0, "updated_at", 0},
    {"keep_snapshots", CT_INT, I(keep_snapshots), 1, 64, "3", 0},
    {"pma_url", CT_STR, S(pma_url), 0, 0, "", 0},
    {"pma_user", CT_STR, S(pma_user), 0, 0, "", 0},
    {"pma_password_file", CT_PATH, S(pma_password_file), 0, 0, NULL, 0},
    {"pma_db", CT_STR, S(pma_db), 0, 0, "", 0},
    {"pma_table", CT_STR, S(pma_table), 0, 0, "", 0},
    {"chromedriver", CT_PATH, S(chromedriver), 0, 0, "/usr/bin/chromedriver", 0},
    {"chromium", CT_PATH, S(chromium), 0, 0, "/usr/bin/chromium", 0},
    {"webdriver_url", CT_STR, S(webdriver_url), 0, 0, "", 0},
    {"export_via", CT_STR, S(export_via), 0, 0, "http", 0},
};
#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* A user or group name as useradd accepts it: [a-z_][a-z0-9_-]*, at most 32 bytes. */
static int valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 32 || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (i = 1; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

/* location_prefix: "/" or "/seg/.../", segments of [A-Za-z0-9._~-], none "." or "..". It is
 * rendered into nginx regexes and rewrites, so nothing else may reach them. */
static int valid_prefix(const char *s)
{
	size_t n = strlen(s), i, seg = 1;

	if (n == 0 || s[0] != '/' || s[n - 1] != '/')
		return 0;
	for (i = 1; i < n; i++) {
		if (s[i] == '/') {
			if (i == seg || (i - seg == 1 && s[seg] == '.') ||
			    (i - seg == 2 && s[seg] == '.' && s[seg + 1] == '.'))
				return 0;
			seg = i + 1;
		} else if (!(isalnum((unsigned char)s[i]) || strchr("._~-", s[i]) != NULL)) {
			return 0;
		}
	}
	return 1;
}

/* Make p absolute against dir. Returns 0, or -1 if it does not fit. */
static int resolve(char *out, size_t len, const char *dir, const char *p)
{
	int n;

	if (p[0] == '/')
		n = snprintf(out, len, "%s", p);
	else
		n = snprintf(out, len, "%s/%s", dir, p);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/*
 * One origin of cors_origins, as a browser sends it in Origin: http or https, a host name,
 * IPv4 or [IPv6] address, an optional port, nothing after. Only these characters reach the
 * nginx map the drop-in is rendered with. Returns 0, or -1 with the reason in why.
 */
static int check_origin(const char *o, size_t len, char *why, size_t whylen)
{
	size_t i = 0, host;

	if (len == 1 && o[0] == '*')
		return 0;
	if (len > 7 && strncasecmp(o, "http://", 7) == 0)
		i = 7;
	else if (len > 8 && strncasecmp(o, "https://", 8) == 0)
		i = 8;
	else
		goto bad;
	host = i;
	if (o[i] == '[') {
		for (i++; i < len && (isxdigit((unsigned char)o[i]) || o[i] == ':' || o[i] == '.');
		     i++)
			;
		if (i >= len || o[i] != ']' || i == host + 1)
			goto bad;
		i++;
	} else {
		for (; i < len && (isalnum((unsigned char)o[i]) || o[i] == '.' || o[i] == '-'); i++)
			;
		if (i == host)
			goto bad;
	}
	if (i < len && o[i] == ':') {
		size_t port = ++i;
		long p = 0;
		for (; i < len && isdigit((unsigned char)o[i]) && i - port < 5; i++)
			p = p * 10 + (o[i] - '0');
		if (i == port || p < 1 || p > 65535)
			goto bad;
	}
	if (i == len)
		return 0;
bad:
	snprintf(why, whylen,
	         "'%.*s' is not an origin like https://example.com or http://127.0.0.1:8081 "
	         "(scheme, host, optional port; no path or slash), or *",
	         (int)(len > 100 ? 100 : len), o);
	return -1;
}

/* Parse and store one value. Returns 0, or -1 with the reason in why. */
static int set_value(struct conf *c, const struct conf_key *k, const char *dir, const char *v,
                     char *why, size_t whylen)
{
	char *field = (char *)c + k->off, *end;
	long l;
	double d;

	switch (k->type) {
	case CT_STR:
		if (strlen(v) >= k->size) {
			snprintf(why, whylen, "value is too long (at most %zu bytes)", k->size - 1);
			return -1;
		}
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case CT_PATH:
		if (*v == '\0') {
			snprintf(why, whylen, "empty path");
			return -1;
		}
		if (resolve(field, k->size, dir, v) < 0) {
			snprintf(why, whylen, "path is too long");
			return -1;
		}
		return 0;
	case CT_LISTEN: {
		const char *colon = strrchr(v, ':');
		if (colon == NULL || colon == v || strlen(v) >= k->size) {
			snprintf(why, whylen, "expected address:port, got '%s'", v);
			return -1;
		}
		errno = 0;
		l = strtol(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || l < 1 || l > 65535) {
			snprintf(why, whylen, "bad port in '%s'", v);
			return -1;
		}
		memcpy(field, v, strlen(v) + 1);
		return 0;
	}
	case CT_INT:
		errno = 0;
		l = strtol(v, &end, 10);
		if (errno || *end || end == v || l < k->min || l > k->max) {
			snprintf(why, whylen, "expected a whole number from %ld to %ld, got '%s'",
			         k->min, k->max, v);
			return -1;
		}
		*(int *)(void *)field = (int)l;
		return 0;
	case CT_ORIGINS: {
		/* A list separated by spaces or commas; stored lowercase, one space apart. */
		size_t n = 0, len;
		const char *p = v;
		for (;;) {
			p += strspn(p, " \t,");
			if (*p == '\0')
				break;
			len = strcspn(p, " \t,");
			if (check_origin(p, len, why, whylen) < 0)
				return -1;
			if (n + len + 2 > k->size) {
				snprintf(why, whylen, "value is too long (at most %zu bytes)",
				         k->size - 1);
				return -1;
			}
			if (n)
				field[n++] = ' ';
			for (size_t j = 0; j < len; j++)
				field[n++] = (char)tolower((unsigned char)p[j]);
			p += len;
		}
		field[n] = '\0';
		return 0;
	}
	case CT_SIZE: /* bytes, or with K, M or G (1024, 1024^2, 1024^3) */
		errno = 0;
		l = strtol(v, &end, 10);
		if (!errno && end != v && *end && end[1] == '\0' && strchr("kKmMgG", *end)) {
			int shift = (*end | 0x20) == 'k' ? 10 : (*end | 0x20) == 'm' ? 20 : 30;
			l = l >= 0 && l <= (LONG_MAX >> shift) ? l << shift : LONG_MAX;
			end++;
		}
		if (errno || *end || end == v || l < k->min || l > k->max) {
			snprintf(
			    why, whylen,
			    "expected a size from %ld to %ld bytes (K, M and G allowed), got '%s'",
			    k->min, k->max, v);
			return -1;
		}
		*(int *)(void *)field = (int)l;
		return 0;
	case CT_RATIO:
		errno = 0;
		d = strtod(v, &end);
		if (errno || *end || end == v || !(d >= 0.0 && d <= 1.0)) {
			snprintf(why, whylen, "expected a number from 0 to 1, got '%s'", v);
			return -1;
		}
		*(double *)(void *)field = d;
		return 0;
	}
	return -1;
}

int conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX], abs[PATH_MAX], line[4096], why[256];
	unsigned char seen[CONF_NKEYS];
	FILE *f = NULL;
	size_t i;
	int lineno = 0, rc = -1;
	char *slash;

	memset(c, 0, sizeof(*c));
	memset(seen, 0, sizeof(seen));
	if (path == NULL || *path == '\0')
		path = getenv(CONF_ENV);
	if (path == NULL || *path == '\0') {
		errf(err, errlen, "no config file: give -c FILE or set %s", CONF_ENV);
		return -1;
	}
	if (realpath(path, abs) == NULL) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (strlen(abs) >= sizeof(c->path)) {
		errf(err, errlen, "%s: path is too long", path);
		return -1;
	}
	memcpy(c->path, abs, strlen(abs) + 1);
	snprintf(dir, sizeof(dir), "%s", c->path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';

	if ((f = fopen(c->path, "re")) == NULL) {
		errf(err, errlen, "%s: %s", c->path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s, *eq, *key, *val;
		const struct conf_key *k = NULL;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			errf(err, errlen, "%s:%d: line is too long", c->path, lineno);
			goto out;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			errf(err, errlen, "%s:%d: expected 'key = value'", c->path, lineno);
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		for (i = 0; i < CONF_NKEYS; i++)
			if (strcmp(conf_keys[i].name, key) == 0) {
				k = &conf_keys[i];
				break;
			}
		if (k == NULL) {
			errf(err, errlen, "%s:%d: unknown key '%s'", c->path, lineno, key);
			goto out;
		}
		if (seen[i]) {
			errf(err, errlen, "%s:%d: key '%s' is given twice", c->path, lineno, key);
			goto out;
		}
		if (set_value(c, k, dir, val, why, sizeof(why)) < 0) {
			errf(err, errlen, "%s:%d: key '%s': %s", c->path, lineno, key, why);
			goto out;
		}
		seen[i] = 1;
	}
	if (ferror(f)) {
		errf(err, errlen, "%s: read error", c->path);
		goto out;
	}
	for (i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (seen[i])
			continue;
		if (k->required) {
			errf(err, errlen, "%s: missing required key '%s'", c->path, k->name);
			goto out;
		}
		if (k->dflt != NULL && set_value(c, k, dir, k->dflt, why, sizeof(why)) < 0) {
			errf(err, errlen, "%s: default of '%s': %s", c->path, k->name, why);
			goto out;
		}
	}
	if (c->log_dir[0] == '\0' && snprintf(c->log_dir, sizeof(c->log_dir), "%s/log",
	                                      c->run_dir) >= (int)sizeof(c->log_dir)) {
		errf(err, errlen, "%s: log_dir is too long", c->path);
		goto out;
	}
	if (!valid_prefix(c->location_prefix)) {
		errf(err, errlen,
		     "%s: key 'location_prefix': expected a path like /api/orders/ (starting and "
		     "ending with /; letters, digits, '.', '_', '-', '~'), got '%s'",
		     c->path, c->location_prefix);
		goto out;
	}
	if (!valid_name(c->user) || !valid_name(c->group)) {
		errf(err, errlen,
		     "%s: key '%s': expected a user or group name (letters, digits, '_', '-')",
		     c->path, valid_name(c->user) ? "group" : "user");
		goto out;
	}
	if (c->webdriver_url[0] && strncmp(c->webdriver_url, "http://", 7) != 0) {
		errf(err, errlen, "%s: key 'webdriver_url': must start with http://", c->path);
		goto out;
	}
	if (strcmp(c->export_via, "http") != 0 && strcmp(c->export_via, "browser") != 0) {
		errf(err, errlen, "%s: key 'export_via': expected http or browser, got '%s'",
		     c->path, c->export_via);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

int conf_get(const struct conf *c, const char *key, char *buf, size_t len)
{
	size_t i;

	if (strcmp(key, "path") == 0) {
		snprintf(buf, len, "%s", c->path);
		return 0;
	}
	for (i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		const char *field = (const char *)c + k->off;
		if (strcmp(k->name, key) != 0)
			continue;
		if (k->type == CT_INT || k->type == CT_SIZE)
			snprintf(buf, len, "%d", *(const int *)(const void *)field);
		else if (k->type == CT_RATIO)
			snprintf(buf, len, "%g", *(const double *)(const void *)field);
		else
			snprintf(buf, len, "%s", field);
		return 0;
	}
	return -1;
}

int conf_has_pma(const struct conf *c)
{
	return c->pma_url[0] && c->pma_user[0] && c->pma_password_file[0] && c->pma_db[0] &&
	       c->pma_table[0];
}

const char *conf_key_name(size_t i)
{
	return i < CONF_NKEYS ? conf_keys[i].name : NULL;
}
