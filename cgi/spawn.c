#include "spawn.h"

#include "../common/cache.h"
#include "../common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char sync_bin[PATH_MAX];

void spawn_init(const struct conf *c)
{
	char self[PATH_MAX], *slash;
	ssize_t n;
	const char *cand[] = {"%s/pmacache-sync", "%s/../sync/pmacache-sync"};
	size_t i;

	if (c->sync_bin[0]) {
		snprintf(sync_bin, sizeof(sync_bin), "%s", c->sync_bin);
		return;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0)
		return;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) != NULL)
		*slash = '\0';
	for (i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		char path[PATH_MAX + 32];
		snprintf(path, sizeof(path), cand[i], self);
		if (access(path, X_OK) == 0 && realpath(path, sync_bin) != NULL)
			return;
	}
	sync_bin[0] = '\0';
}

/*
 * A sync that could not be started writes nothing itself: record the failure where /status
 * reads the last sync (status.json), as the sync would. Called with the sync lock held.
 */
static void status_failed(const struct conf *c, const char *why)
{
	struct json_object *o = json_object_new_object();
	char iso[32], err[512];
	const char *s;

	cache_iso8601(time(NULL), iso, sizeof(iso));
	json_object_object_add(o, "started_at", json_object_new_string(iso));
	json_object_object_add(o, "finished_at", json_object_new_string(iso));
	json_object_object_add(o, "result", json_object_new_string("failed"));
	json_object_object_add(o, "duration_s", json_object_new_double_s(0, "0.000"));
	json_object_object_add(o, "error", json_object_new_string(why));
	json_object_object_add(o, "rows", NULL);
	s = json_object_to_json_string_ext(o,
	                                   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (cache_write_file(c->cache_dir, CACHE_STATUS, s, strlen(s), err, sizeof(err)) < 0)
		log_err("refresh: %s", err);
	json_object_put(o);
}

enum spawn_result spawn_sync(const struct conf *c, char *err, size_t errlen)
{
	char logpath[PATH_MAX + 16];
	char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL};
	char *argv[] = {sync_bin, "-c", (char *)c->path, "--lock-fd", "3", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all, none;
	pid_t pid;
	int lock_fd = -1, rc, fa_ok = 0, at_ok = 0;
	enum spawn_result res = SPAWN_ERROR;

	if (sync_bin[0] == '\0') {
		snprintf(err, errlen, "pmacache-sync not found: set sync_bin in %s", c->path);
		return SPAWN_ERROR;
	}
	switch (cache_sync_trylock(c->cache_dir, &lock_fd, err, errlen)) {
	case 0:
		break;
	case 1:
		return SPAWN_RUNNING;
	default:
		return SPAWN_ERROR;
	}
	cache_mkdir(c->log_dir, 0755);
	snprintf(logpath, sizeof(logpath), "%s/sync.log", c->log_dir);

	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		goto fail;
	fa_ok = 1;
	/* fd 0 is the FastCGI listening socket in a responder: never hand it on. */
	if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_APPEND,
	                                           0640)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, lock_fd, 3)) != 0 ||
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 4)) != 0)
		goto fail;
	if ((rc = posix_spawnattr_init(&at)) != 0)
		goto fail;
	at_ok = 1;
	sigfillset(&all);
	sigemptyset(&none);
	if ((rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
	                                            POSIX_SPAWN_SETSIGDEF)) != 0 ||
	    (rc = posix_spawnattr_setsigmask(&at, &none)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(&at, &all)) != 0)
		goto fail;
	if ((rc = posix_spawn(&pid, sync_bin, &fa, &at, argv, envp)) != 0)
		goto fail;
	log_info("started sync pid %ld", (long)pid);
	res = SPAWN_STARTED;
	goto out;
fail:
	snprintf(err, errlen, "starting %s: %s (its log: %s)", sync_bin, strerror(rc), logpath);
	status_failed(c, err);
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (at_ok)
		posix_spawnattr_destroy(&at);
	/* The child holds its own copy of the locked open file; ours goes. */
	close(lock_fd);
	return res;
}
