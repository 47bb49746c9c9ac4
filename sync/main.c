/*
 * pmacache-sync: refresh the cache. Either from a local CSV export (--csv FILE) or from
 * phpMyAdmin through headless Chromium. Holds the single-flight sync lock for the whole run.
 */
#include "../common/cache.h"
#include "../common/conf.h"
#include "../common/log.h"
#include "../common/priv.h"
#include "../common/status.h"
#include "doctor.h"
#include "pma.h"
#include "proc.h"
#include "snap.h"
#include "stream.h"
#include "sync.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t sync_stop;

/* Every failure's class, and the exit code it ends the sync with (README, pmacache-sync(8)).
 * The one place a class becomes an exit code. */
static const struct {
	enum sync_class cls;
	enum sync_exit code;
} exit_codes[] = {
    {SC_OK, EXIT_OK},           {SC_CONFIG, EXIT_CONFIG},
    {SC_DRIVER, EXIT_BROWSER},  {SC_BROWSER, EXIT_BROWSER},
    {SC_LOGIN, EXIT_LOGIN},     {SC_UNREACHABLE, EXIT_PMA},
    {SC_PMA, EXIT_PMA},         {SC_EXPORT, EXIT_EXPORT},
    {SC_CUT, EXIT_EXPORT},      {SC_INVALID, EXIT_VALIDATION},
    {SC_WRITE, EXIT_WRITE},     {SC_RUNNING, EXIT_RUNNING},
    {SC_TIMEOUT, EXIT_TIMEOUT}, {SC_STOPPED, EXIT_TIMEOUT},
};

/* The class of what snap_build said (SNAP_EINPUT: the input's own class, asked for apart). */
static const enum sync_class snap_classes[] = {
    [SNAP_OK] = SC_OK,         [SNAP_EINVALID] = SC_INVALID,
    [SNAP_EWRITE] = SC_WRITE,  [SNAP_ESTOPPED] = SC_TIMEOUT,
    [SNAP_EINPUT] = SC_EXPORT,
};

int sync_exit_code(enum sync_class cls)
{
	size_t i;

	for (i = 0; i < sizeof(exit_codes) / sizeof(exit_codes[0]); i++)
		if (exit_codes[i].cls == cls)
			return exit_codes[i].code;
	return EXIT_WRITE; /* not reached: every class has its row */
}

static struct conf cf;
static int tty;
static struct status_run run; /* started_at, for status.json and progress.json */

/*
 * SIGTERM/SIGINT (2) or SIGALRM at sync_timeout (1). Every wait polls sync_stop; a blocking
 * read is interrupted (no SA_RESTART). A signal that lands between a check and the read is
 * not lost: once stopping, the alarm repeats every second until the process ends.
 */
static void on_signal(int sig)
{
	if (sig != SIGALRM)
		sync_stop = 2;
	else if (!sync_stop)
		sync_stop = 1;
	alarm(1);
}

static double elapsed(void)
{
	return status_run_elapsed(&run);
}

void sync_phase(const char *phase, long long rows, long long bytes)
{
	char err[512];

	if (status_write_progress(cf.cache_dir, &run, phase, rows, bytes, err, sizeof(err)) < 0)
		log_warn("progress: %s", err);

	if (tty) {
		fprintf(stderr, "\r\033[K%6.1fs  %-9s", elapsed(), phase);
		if (rows >= 0)
			fprintf(stderr, "  %lld rows", rows);
		if (bytes >= 0)
			fprintf(stderr, "  %.1f MB", (double)bytes / 1e6);
		fflush(stderr);
	} else {
		log_info("phase %s rows=%lld bytes=%lld (%.2fs)", phase, rows, bytes, elapsed());
	}
}

static void snap_phase(void *arg, const char *phase, long long rows, long long bytes)
{
	(void)arg;
	sync_phase(phase, rows, bytes);
}

/* The folder of the file open on fd (the sync lock, cache_dir/sync.lock), into dir. */
static int cache_dir_of_lock(int fd, char *dir, size_t len)
{
	char link[64], path[4096], *slash;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return 0;
	path[n] = '\0';
	if ((slash = strrchr(path, '/')) == NULL || strcmp(slash, "/sync.lock") != 0 ||
	    slash == path || (size_t)(slash - path) >= len)
		return 0;
	*slash = '\0';
	memcpy(dir, path, (size_t)(slash - path) + 1);
	return 1;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: pmacache-sync [-c FILE] [--csv EXPORT.csv|-] [--force] [--no-index] [-v]\n"
	        "       pmacache-sync [-c FILE] --check [--login]\n");
}

/* snap's input_end for a streamed export: whether its transfer ended whole; the class goes
 * to stream_cls. */
static enum sync_class stream_cls;

static int stream_input_end(void *arg, char *err, size_t errlen)
{
	stream_cls = (enum sync_class)stream_verdict(arg, err, errlen);
	return stream_cls != SC_OK;
}

static int finish(enum sync_class cls, const char *error, long long rows)
{
	int code = sync_exit_code(cls);
	char err[512] = "";

	if (tty)
		fputc('\n', stderr);
	if (code == EXIT_OK) {
		status_write_result(cf.cache_dir, &run, RESULT_SUCCESS, NULL, rows, err,
		                    sizeof(err));
		log_info("sync done: %lld rows in %.2fs", rows, elapsed());
	} else {
		status_write_result(cf.cache_dir, &run,
		                    code == EXIT_TIMEOUT ? RESULT_STOPPED : RESULT_FAILED, error,
		                    -1, err, sizeof(err));
		log_err("sync failed: %s", error);
	}
	if (err[0])
		log_err("status: %s", err);
	return code;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
	                                         {"csv", required_argument, NULL, 'C'},
	                                         {"force", no_argument, NULL, 'f'},
	                                         {"lock-fd", required_argument, NULL, 'L'},
	                                         {"check", no_argument, NULL, 'k'},
	                                         {"verbose", no_argument, NULL, 'v'},
	                                         {"login", no_argument, NULL, 'l'},
	                                         {"check-keys", no_argument, NULL, 'K'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {"no-index", no_argument, NULL, 'N'},
	                                         {NULL, 0, NULL, 0}};
	const char *conf_path = NULL, *csv_path = NULL;
	char err[1024];
	struct rlimit nocore = {0, 0};
	struct pma_hooks ph = {&sync_stop, snap_phase, NULL};
	struct snap_opts so;
	struct snap_result sr;
	struct pma_out px;
	enum snap_fail sf;
	enum sync_class cls;
	struct sigaction sa;
	int ch, force = 0, no_index = 0, check = 0, lock_fd = -1, csv_fd = -1;
	enum log_level lvl = LOG_INFO;

	status_run_begin(&run);
	memset(&px, 0, sizeof(px));
	while ((ch = getopt_long(argc, argv, "c:fvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'C':
			csv_path = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 'N':
			no_index = 1;
			break;
		case 'L':
			lock_fd = atoi(optarg);
			break;
		case 'k':
			check = check ? check : 1;
			break;
		case 'l': /* --check --login */
			check = 2;
			break;
		case 'K': /* --check-keys: what `pmacache start` checks */
			check = 3;
			break;
		case 'v':
			lvl = LOG_DEBUG;
			break;
		case 'h':
			usage();
			return sync_exit_code(SC_OK);
		default:
			usage();
			return sync_exit_code(SC_CONFIG);
		}
	}
	if (optind != argc) {
		usage();
		return sync_exit_code(SC_CONFIG);
	}
	log_init("pmacache-sync", lvl);
	umask(027);
	/* The phpMyAdmin password passes through this process: no core file may keep it. */
	setrlimit(RLIMIT_CORE, &nocore);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Orphaned browser processes become ours to reap: none outlives the sync. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	if (conf_load(&cf, conf_path, err, sizeof(err)) < 0) {
		if (check)
			printf("FAIL config: %s; fix: see pmacache.conf(5)\n", err);
		/* Started by /refresh: the lock it handed over names cache_dir, so /status can
		 * still say why this sync never started. */
		if (lock_fd >= 0 && cache_sync_holds(lock_fd) &&
		    cache_dir_of_lock(lock_fd, cf.cache_dir, sizeof(cf.cache_dir)))
			return finish(SC_CONFIG, err, -1);
		log_err("%s", err);
		return sync_exit_code(SC_CONFIG);
	}
	if (!check)
		log_syslog(cf.log_syslog);
	/* Started as root (cron, a shell): become the configured user before anything else. */
	if (priv_drop(&cf, err, sizeof(err)) < 0) {
		if (lock_fd >= 0 && cache_sync_holds(lock_fd)) /* started by /refresh: say so */
			return finish(SC_CONFIG, err, -1);
		log_err("%s", err);
		return sync_exit_code(SC_CONFIG);
	}
	if (check) /* the doctor: one line per check, OK or FAIL with the fix */
		return doctor_run(&cf, check == 3   ? DOCTOR_KEYS
		                       : check == 2 ? DOCTOR_LOGIN
		                                    : DOCTOR_ALL)
		           ? sync_exit_code(SC_CONFIG)
		           : sync_exit_code(SC_OK);
	if (cache_mkdir(cf.cache_dir, 0750) < 0) {
		errf(err, sizeof(err), "cache_dir %s: %s", cf.cache_dir, strerror(errno));
		if (lock_fd >= 0 && cache_sync_holds(lock_fd)) /* started by /refresh: say so */
			return finish(SC_WRITE, err, -1);
		log_err("%s", err);
		return sync_exit_code(SC_WRITE);
	}

	/* Single flight: the responder hands over the lock it took; cron and CLI take it here. */
	if (lock_fd >= 0) {
		if (!cache_sync_holds(lock_fd)) {
			log_err("--lock-fd %d: not the sync lock: %s", lock_fd, strerror(errno));
			return sync_exit_code(SC_CONFIG);
		}
		fcntl(lock_fd, F_SETFD, FD_CLOEXEC);
	} else {
		switch (cache_sync_trylock(cf.cache_dir, &lock_fd, err, sizeof(err))) {
		case 0:
			break;
		case 1:
			log_err("already running: another sync holds %s/sync.lock", cf.cache_dir);
			return sync_exit_code(SC_RUNNING);
		default:
			log_err("%s", err);
			return sync_exit_code(SC_WRITE);
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned)cf.sync_timeout);

	tty = isatty(STDERR_FILENO);
	cache_remove_stale(cf.cache_dir);
	if (status_write_running(cf.cache_dir, &run, err, sizeof(err)) < 0)
		log_err("status: %s", err);
	sync_phase("starting", -1, -1);

	if (csv_path && strcmp(csv_path, "-") == 0) {
		/* Standard input, whatever it is (a pipe): sync_timeout and signals still end it.
		 */
		csv_fd = STDIN_FILENO;
		csv_path = "(stdin)";
	} else if (csv_path) {
		struct stat st;
		/* A regular file only: a FIFO or a device could block or never end (a FIFO is
		 * opened without waiting for its writer, to be refused). */
		if ((csv_fd = open(csv_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
			snprintf(err, sizeof(err), "%s: %s", csv_path, strerror(errno));
			return finish(SC_CONFIG, err, -1);
		}
		if (fstat(csv_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			snprintf(err, sizeof(err),
			         "%s: not a regular file (give --csv - to read a pipe on standard "
			         "input)",
			         csv_path);
			close(csv_fd);
			return finish(SC_CONFIG, err, -1);
		}
		fcntl(csv_fd, F_SETFL, fcntl(csv_fd, F_GETFL) & ~O_NONBLOCK);
	} else {
		if (!conf_has_pma(&cf))
			return finish(SC_CONFIG,
			              "phpMyAdmin is not configured: set pma_url, pma_user, "
			              "pma_password_file, pma_db and pma_table, or give --csv FILE",
			              -1);
		cls = pma_export(&cf, &ph, &px, err, sizeof(err));
		if (cls == SC_OK && px.stream) {
			csv_fd = stream_fd(px.stream);
			csv_path = "the export";
		} else if (cls == SC_OK) {
			if ((csv_fd = open(px.csv_path, O_RDONLY | O_CLOEXEC)) < 0) {
				errf(err, sizeof(err), "%s: %s", px.csv_path, strerror(errno));
				cls = SC_EXPORT;
			}
			csv_path = px.csv_path;
		}
		if (cls != SC_OK) {
			proc_rmtree(px.tmpdir);
			return finish(cls, err, -1);
		}
	}

	memset(&so, 0, sizeof(so));
	so.cache_dir = cf.cache_dir;
	so.min_rows_ratio = cf.min_rows_ratio;
	so.force = force;
	so.max_field = (size_t)cf.max_field_bytes;
	so.id_column = cf.id_column;
	so.updated_column = cf.updated_column;
	so.keep_snapshots = cf.keep_snapshots;
	so.no_index = no_index;
	cache_set_keep(cf.keep_snapshots);
	so.stop = &sync_stop;
	so.phase = snap_phase;
	if (px.stream) { /* nothing is published unless the transfer ended whole */
		so.input_end = stream_input_end;
		so.input_arg = px.stream;
	}
	sf = snap_build(csv_fd, csv_path, &so, &sr, err, sizeof(err));
	cls = sf == SNAP_EINPUT ? stream_cls : snap_classes[sf];
	if (sf == SNAP_ESTOPPED) {
		char what[sizeof(err)];
		snprintf(what, sizeof(what), "%s", err);
		cls = SC_OF_STOP(sync_stop);
		if (sync_stop == 1)
			errf(err, sizeof(err), "sync_timeout (%d s) passed: %s", cf.sync_timeout,
			     what);
		else
			errf(err, sizeof(err), "stopped by a signal: %s", what);
	}
	if (px.stream) {
		char serr[sizeof(err)];
		long long got;
		/* A transfer that failed (cut, ...) is why the converter saw a broken CSV. */
		int v = stream_end(px.stream, &got, serr, sizeof(serr));
		if (sf == SNAP_EINVALID && v > SC_OK) {
			log_info("the converter's view: %s", err);
			snprintf(err, sizeof(err), "%s", serr);
			cls = (enum sync_class)v;
		}
		log_info("export: %lld bytes streamed into the conversion (%.2fs)", got, elapsed());
	} else if (csv_fd != STDIN_FILENO) {
		close(csv_fd);
	}
	proc_rmtree(px.tmpdir);
	if (cls == SC_OK && sync_stop) {
		/* Published already: report success; the stop came too late to matter. */
		log_warn("stop requested after the swap");
	}
	return finish(cls, err, sr.rows);
}
