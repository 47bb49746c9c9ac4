#include "../../common/conf.h"
#include "t.h"

#include <string.h>

static const struct {
	const char *text;
	const char *err; /* NULL: loads */
} cases[] = {
    {"cache_dir = c\napi_keys_file = k\n", NULL},
    {"# comment\n\n  cache_dir=c  \napi_keys_file = k # not a comment start\n", NULL},
    {"cache_dir = c\ncahce_dir = d\napi_keys_file = k\n", "t.conf:2: unknown key 'cahce_dir'"},
    {"cache_dir = c\n", "missing required key 'api_keys_file'"},
    {"api_keys_file = k\n", "missing required key 'cache_dir'"},
    {"cache_dir = c\napi_keys_file = k\nworkers = 0\n",
     "t.conf:3: key 'workers': expected a whole number from 1 to 64, got '0'"},
    {"cache_dir = c\napi_keys_file = k\nworkers = two\n", "key 'workers'"},
    {"cache_dir = c\napi_keys_file = k\nworkers = 2x\n", "key 'workers'"},
    {"cache_dir = c\napi_keys_file = k\nmin_rows_ratio = 1.5\n", "key 'min_rows_ratio'"},
    {"cache_dir = c\napi_keys_file = k\nlisten = 8080\n", "key 'listen': expected address:port"},
    {"cache_dir = c\napi_keys_file = k\nlisten = 127.0.0.1:99999\n", "bad port"},
    {"cache_dir = c\napi_keys_file = k\ncache_dir = d\n",
     "t.conf:3: key 'cache_dir' is given twice"},
    {"cache_dir\napi_keys_file = k\n", "t.conf:1: expected 'key = value'"},
    {"cache_dir = \napi_keys_file = k\n", "t.conf:1: key 'cache_dir': empty path"},
    {"cache_dir = c\napi_keys_file = k\nwebdriver_url = ftp://x\n", "webdriver_url"},
    {"cache_dir = c\napi_keys_file = k\nexport_via = ftp\n",
     "t.conf: key 'export_via': expected http or browser, got 'ftp'"},
    {"cache_dir = c\napi_keys_file = k\nexport_via = browser\n", NULL},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = https://a.example, http://[::1]:81 *\n",
     NULL},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = https://a.example/\n",
     "t.conf:3: key 'cors_origins': 'https://a.example/' is not an origin"},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = a.example\n", "'a.example' is not"},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = http://a:0\n", "'http://a:0' is not"},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = http://a:123456\n", "is not an origin"},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = http://\n", "is not an origin"},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = http://a\"b\n", "is not an origin"},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = http://a;b\n", "is not an origin"},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = http://[]\n", "is not an origin"},
    {"cache_dir = c\napi_keys_file = k\ncors_origins = ftp://a\n", "is not an origin"},
    {"cache_dir = c\napi_keys_file = k\nlocation_prefix = /api/orders/\n", NULL},
    {"cache_dir = c\napi_keys_file = k\nlocation_prefix = /\n", NULL},
    {"cache_dir = c\napi_keys_file = k\nlocation_prefix = /api\n", "key 'location_prefix'"},
    {"cache_dir = c\napi_keys_file = k\nlocation_prefix = api/\n", "key 'location_prefix'"},
    {"cache_dir = c\napi_keys_file = k\nlocation_prefix = /a//b/\n", "key 'location_prefix'"},
    {"cache_dir = c\napi_keys_file = k\nlocation_prefix = /a/../\n", "key 'location_prefix'"},
    {"cache_dir = c\napi_keys_file = k\nlocation_prefix = /a b/\n", "key 'location_prefix'"},
    {"cache_dir = c\napi_keys_file = k\nlocation_prefix = /a$1/\n", "key 'location_prefix'"},
    {"cache_dir = c\napi_keys_file = k\nuser = Root;x\n", "key 'user'"},
    {"cache_dir = c\napi_keys_file = k\ngroup = -x\n", "key 'group'"},
    {"cache_dir = c\napi_keys_file = k\nuser = www-data\ngroup = _g1\n", NULL},
    {"cache_dir = c\napi_keys_file = k\nmax_field_bytes = 1000\n",
     "t.conf:3: key 'max_field_bytes': expected a size from 1024 to 1073741824 bytes"},
    {"cache_dir = c\napi_keys_file = k\nmax_field_bytes = 2G\n", "key 'max_field_bytes'"},
    {"cache_dir = c\napi_keys_file = k\nmax_field_bytes = 16X\n", "key 'max_field_bytes'"},
    {"cache_dir = c\napi_keys_file = k\nmax_field_bytes = 16MB\n", "key 'max_field_bytes'"},
    {"cache_dir = c\napi_keys_file = k\nmax_field_bytes = 99999999999999999999M\n",
     "key 'max_field_bytes'"},
    {"cache_dir = c\napi_keys_file = k\nmax_field_bytes = 1G\n", NULL},
};

void test_conf(void)
{
	struct conf c;
	char err[512], dir[300], val[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = t_file("t.conf", cases[i].text);
		int rc = conf_load(&c, path, err, sizeof(err));
		if (cases[i].err == NULL)
			CHECK(rc == 0, "case %zu: %s", i, err);
		else
			CHECK(rc < 0 && strstr(err, cases[i].err) != NULL,
			      "case %zu: want '%s', got rc %d '%s'", i, cases[i].err, rc,
			      rc ? err : "");
	}

	/* Relative paths are relative to the config file; defaults apply. */
	const char *path = t_file("t.conf", "cache_dir = cache\napi_keys_file = /etc/keys\n");
	CHECK(conf_load(&c, path, err, sizeof(err)) == 0, "load: %s", err);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	snprintf(val, sizeof(val), "%s/cache", dir);
	CHECK(strcmp(c.cache_dir, val) == 0, "cache_dir %s, want %s", c.cache_dir, val);
	CHECK(strcmp(c.api_keys_file, "/etc/keys") == 0, "absolute path kept: %s", c.api_keys_file);
	snprintf(val, sizeof(val), "%s/run/log", dir);
	CHECK(strcmp(c.log_dir, val) == 0, "log_dir defaults to run_dir/log: %s", c.log_dir);
	CHECK(c.workers == 2 && c.sync_timeout == 300 && c.min_rows_ratio == 0.5 &&
	          c.sse_heartbeat_s == 15,
	      "defaults");
	CHECK(strcmp(c.listen, "127.0.0.1:8080") == 0, "default listen");
	CHECK(conf_get(&c, "workers", val, sizeof(val)) == 0 && strcmp(val, "2") == 0, "get int");
	CHECK(conf_get(&c, "nope", val, sizeof(val)) < 0, "get unknown key");
	CHECK(!conf_has_pma(&c), "no pma configured");
	CHECK(c.cors_origins[0] == '\0', "no CORS origins by default");
	CHECK(strcmp(c.export_via, "http") == 0, "export_via defaults to http: %s", c.export_via);

	/* cors_origins: any mix of spaces and commas, stored lowercase one space apart. */
	path = t_file("t.conf", "cache_dir = c\napi_keys_file = k\n"
	                        "cors_origins = HTTPS://Ops.Example ,http://127.0.0.1:8081,,\t*\n");
	CHECK(conf_load(&c, path, err, sizeof(err)) == 0, "load: %s", err);
	CHECK(conf_get(&c, "cors_origins", val, sizeof(val)) == 0 &&
	          strcmp(val, "https://ops.example http://127.0.0.1:8081 *") == 0,
	      "cors_origins normalized: '%s'", val);
	CHECK(c.max_field_bytes == 16 * 1024 * 1024 &&
	          conf_get(&c, "max_field_bytes", val, sizeof(val)) == 0 &&
	          strcmp(val, "16777216") == 0,
	      "max_field_bytes defaults to 16 MiB: %d", c.max_field_bytes);
	path = t_file("t.conf", "cache_dir = c\napi_keys_file = k\nmax_field_bytes = 64k\n");
	CHECK(conf_load(&c, path, err, sizeof(err)) == 0 && c.max_field_bytes == 65536,
	      "max_field_bytes = 64k: %d %s", c.max_field_bytes, err);

	CHECK(conf_load(&c, "/nonexistent/x.conf", err, sizeof(err)) < 0 &&
	          strstr(err, "/nonexistent/x.conf") != NULL,
	      "missing file named: %s", err);
}
