/*
 * pmacache-fcgi: the FastCGI responders. Started by spawn-fcgi with the listening socket on
 * fd 0. The first process is a supervisor: it forks `workers` responder processes, restarts
 * one that dies, and on SIGTERM stops them all (SIGTERM, a bounded wait, SIGKILL, reap).
 * A responder exits within half a second of SIGTERM, and when its supervisor dies.
 * Each responder runs `threads` threads over FCGX_Accept_r, so a slow client or a long SSE
 * stream holds one thread, never the process.
 */
#include "../common/conf.h"
#include "../common/log.h"
#include "limit.h"
#include "req.h"
#include "routes.h"
#include "spawn.h"
#include "sse.h"

#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

static struct conf cf;
static pthread_mutex_t accept_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int busy; /* requests being answered in this process */

static void *serve(void *arg)
{
	FCGX_Request fr;
	struct req r;
	char err[256];

	(void)arg;
	if (FCGX_InitRequest(&fr, 0, 0) != 0) {
		log_err("FCGX_InitRequest failed");
		return NULL;
	}
	for (;;) {
		int rc, locked = 0;
		/* Serialise accept(2) only. A thread with a kept-alive connection (nginx's
		 * fastcgi_keep_conn) waits for that connection's next request: never under
		 * the lock, or one idle connection would stall every other thread. */
		if (fr.ipcFd < 0) {
			pthread_mutex_lock(&accept_mu);
			locked = 1;
		}
		rc = FCGX_Accept_r(&fr);
		if (locked)
			pthread_mutex_unlock(&accept_mu);
		if (rc < 0) {
			log_err("FCGX_Accept_r: %d", rc);
			break;
		}
		atomic_fetch_add(&busy, 1);
		if (req_parse(&r, &fr, &cf, err, sizeof(err)) < 0)
			req_error(&r, 400, NULL, err);
		else
			routes_dispatch(&r);
		FCGX_Finish_r(&fr);
		atomic_fetch_sub(&busy, 1);
	}
	return NULL;
}

/* One responder process: `threads` threads accepting on fd 0. Never returns. */
static pthread_t *tids; /* lives as long as the process */
static pid_t supervisor_pid;

/*
 * SIGTERM, SIGINT, SIGHUP: stay blocked in every thread and are taken here, so libfcgi's
 * own handler (which only sets a flag that threads blocked in accept(2) never look at) never
 * runs. The requests in hand get up to half a second to finish; streams are cut.
 */
static void *stopper(void *arg)
{
	const sigset_t *set = arg;
	struct timespec ts = {0, 10 * 1000000L};
	int sig, i;

	while (sigwait(set, &sig) != 0)
		;
	for (i = 0; i < 50 && atomic_load(&busy) > 0; i++)
		nanosleep(&ts, NULL);
	_exit(0);
	return NULL;
}

static void worker(void)
{
	static sigset_t stop;
	pthread_attr_t at;
	pthread_t st;
	struct sigaction sa;
	int i;

	/* An orphan stops: the supervisor's death (even by SIGKILL) sends us SIGTERM. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != supervisor_pid)
		_exit(0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL); /* a vanished client costs one request */
	sigaction(SIGCHLD, &sa, NULL); /* syncs we start are reaped by the kernel */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_SETMASK, &stop, NULL); /* inherited by every thread below */
	if (pthread_create(&st, NULL, stopper, &stop) != 0) {
		log_err("could not start the signal thread");
		_exit(1);
	}
	/* Many threads, little memory each: two malloc arenas are plenty and keep RSS flat. */
	mallopt(M_ARENA_MAX, 2);
	if (FCGX_Init() != 0) {
		log_err("FCGX_Init failed");
		_exit(1);
	}
	req_long_init(cf.threads);
	if ((tids = calloc((size_t)cf.threads, sizeof(*tids))) == NULL)
		_exit(1);
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 * 1024);
	for (i = 1; i < cf.threads; i++)
		if (pthread_create(&tids[i], &at, serve, NULL) != 0)
			log_warn("could only start %d threads", i);
	serve(NULL);
	_exit(1);
}

static pid_t start_worker(void)
{
	pid_t pid;

	supervisor_pid = getpid();
	pid = fork();

	if (pid == 0)
		worker();
	if (pid < 0)
		log_err("fork: %s", strerror(errno));
	return pid;
}

static void stop_workers(pid_t *pids, int n)
{
	struct timespec ts = {0, 50 * 1000000L};
	int i, alive, tries;

	for (i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (tries = 0; tries < 100; tries++) { /* up to 5 s */
		alive = 0;
		for (i = 0; i < n; i++) {
			if (pids[i] <= 0)
				continue;
			if (waitpid(pids[i], NULL, WNOHANG) == pids[i])
				pids[i] = 0;
			else
				alive++;
		}
		if (!alive)
			return;
		nanosleep(&ts, NULL);
	}
	for (i = 0; i < n; i++)
		if (pids[i] > 0) {
			log_err("responder %ld did not stop within 5 s of SIGTERM: SIGKILL",
			        (long)pids[i]);
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
}

/* The supervisor. Returns the exit code. */
static int supervise(void)
{
	pid_t pids[MAX_WORKERS] = {0};
	time_t started[MAX_WORKERS] = {0};
	sigset_t set;
	int i, sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < cf.workers; i++) {
		pids[i] = start_worker();
		started[i] = time(NULL);
	}
	log_info("%d responders of %d threads each", cf.workers, cf.threads);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGCHLD) {
			log_info("signal %d: stopping the responders", sig);
			stop_workers(pids, cf.workers);
			return 0;
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			for (i = 0; i < cf.workers; i++) {
				if (pids[i] != pid)
					continue;
				log_err("responder %ld ended (status %d): restarting", (long)pid,
				        status);
				if (time(NULL) - started[i] < 1)
					sleep(1); /* no busy restart loop */
				pids[i] = start_worker();
				started[i] = time(NULL);
			}
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: pmacache-fcgi [-c FILE]            (under spawn-fcgi)\n"
	                "       pmacache-fcgi [-c FILE] --check\n"
	                "       pmacache-fcgi [-c FILE] --get KEY\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
	                                         {"check", no_argument, NULL, 'k'},
	                                         {"get", required_argument, NULL, 'g'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *conf_path = NULL, *get = NULL;
	char err[1024], val[4096];
	struct stat st;
	int ch, check = 0;

	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'g':
			get = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	log_init("pmacache-fcgi", LOG_INFO);
	if (conf_load(&cf, conf_path, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 2;
	}
	if (!get && !check)
		log_syslog(cf.log_syslog);
	if (get) {
		if (conf_get(&cf, get, val, sizeof(val)) < 0) {
			log_err("no config key '%s'", get);
			return 2;
		}
		printf("%s\n", val);
		return 0;
	}
	if (check) {
		printf("%s: ok\n", cf.path);
		return 0;
	}
	if (fstat(0, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		log_err("fd 0 is not a socket: run me under spawn-fcgi (see scripts/pmacache)");
		return 2;
	}
	spawn_init(&cf);
	if (limit_init(cf.limit_bad_keys_per_min, cf.limit_bad_keys_burst) < 0) {
		log_err("no memory for the bad-key limit");
		return 1;
	}
	return supervise();
}
