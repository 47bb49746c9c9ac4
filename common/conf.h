/*
 * conf: the one configuration file both executables and the scripts read.
 * Lines are "key = value", '#' starts a comment, blank lines are ignored.
 * Relative paths are resolved against the folder of the config file.
 */
#ifndef PMACACHE_CONF_H
#define PMACACHE_CONF_H

#include <limits.h>
#include <stddef.h>

#define CONF_ENV "PMACACHE_CONFIG"
#define CONF_PATH 1024 /* the longest path a config may name */

struct conf {
	char path[CONF_PATH]; /* the file read, absolute */
	char listen[128];     /* address:port nginx listens on */
	char cache_dir[CONF_PATH];
	char run_dir[CONF_PATH]; /* sockets, pid files, nginx state */
	char log_dir[CONF_PATH];
	int log_syslog; /* 1: log lines go to syslog (daemon), not stderr */
	char api_keys_file[CONF_PATH];
	char sync_bin[CONF_PATH];  /* pmacache-sync, forked by POST /refresh */
	char location_prefix[256]; /* the endpoints' path in the drop-in: "/" or "/a/b/" */
	char user[64];             /* started as root, the responders and the sync run as this */
	char group[64];            /* ... with this group, which nginx's workers are also in */
	int workers;               /* responder processes */
	int threads;               /* request threads per responder process */
	int sse_heartbeat_s;
	int sse_max_streams;
	int sse_retry_ms;
	/* nginx limits, per client address (rendered into the drop-in) */
	int limit_bad_keys_per_min; /* 401 answers */
	int limit_bad_keys_burst;
	int limit_refresh_per_min; /* POST /refresh and ?refresh=true */
	int limit_refresh_burst;
	int limit_streams_per_client; /* open ?stream=true connections */
	char cors_origins[2048];      /* origins allowed by CORS, space separated ("" none) */
	int limit_conn_per_client;    /* requests in progress, of any kind */
	int sync_timeout;
	double min_rows_ratio;
	int max_field_bytes;      /* the longest CSV field and header row the sync accepts */
	char id_column[256];      /* the primary key: after=, since_id=, changes_since */
	char updated_column[256]; /* updated_since= */
	int keep_snapshots;       /* snapshots kept (the current one included) */
	char pma_url[1024];
	char pma_user[256];
	char pma_password_file[CONF_PATH];
	char pma_db[256];
	char pma_table[256];
	char chromedriver[CONF_PATH];
	char chromium[CONF_PATH];
	char webdriver_url[1024];
	/* How the export arrives: "http" (libcurl POSTs the form the browser filled, with its
	 * cookies, and the body streams into the conversion) or "browser" (its own download) */
	char export_via[16];
};

/*
 * Read the config file at path (or, if path is NULL, at $PMACACHE_CONFIG).
 * Returns 0, or -1 with a message naming file, line and key in err.
 */
int conf_load(struct conf *c, const char *path, char *err, size_t errlen);

/*
 * Print the value of key as it was resolved (paths made absolute) to buf.
 * Returns 0, or -1 if there is no such key.
 */
int conf_get(const struct conf *c, const char *key, char *buf, size_t len);

/* Whether the pma_* keys needed for a browser sync are all set. */
int conf_has_pma(const struct conf *c);

/* The name of the i-th key the parser knows, or NULL past the last. */
const char *conf_key_name(size_t i);

#endif
