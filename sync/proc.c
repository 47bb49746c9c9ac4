#include "proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pid_t proc_start(const char *path, char *const argv[], char *const envp[], const char *errpath,
                 char *err, size_t errlen)
{
	int pfd[2], null_fd, err_fd, e = 0;
	sigset_t none;
	ssize_t n;
	pid_t pid;

	if (access(path, X_OK) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* The child reports a failed exec through this pipe; O_CLOEXEC closes it on success. */
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	err_fd = errpath ? open(errpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	if (null_fd < 0 || (errpath && err_fd < 0)) {
		snprintf(err, errlen, "%s: %s", errpath ? errpath : "/dev/null", strerror(errno));
		goto fail_fds;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail_fds;
	}
	if (pid == 0) {
		int sig;
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		for (sig = 1; sig < NSIG; sig++)
			sigaction(sig, &sa, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
		if (dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 ||
		    dup2(err_fd >= 0 ? err_fd : null_fd, 2) < 0) {
			e = errno;
			goto child_fail;
		}
		/* Everything else, the sync lock above all, stays behind. */
		if (pfd[1] != 3 && dup2(pfd[1], 3) < 0) {
			e = errno;
			goto child_fail;
		}
		fcntl(3, F_SETFD, FD_CLOEXEC);
		close_range(4, ~0U, 0);
		pfd[1] = 3;
		execve(path, argv, envp);
		e = errno;
	child_fail:
		if (write(pfd[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pfd[1]);
	close(null_fd);
	if (err_fd >= 0)
		close(err_fd);
	do
		n = read(pfd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(e)) {
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "exec %s: %s", path, strerror(e));
		return -1;
	}
	return pid;
fail_fds:
	close(pfd[0]);
	close(pfd[1]);
	if (null_fd >= 0)
		close(null_fd);
	if (err_fd >= 0)
		close(err_fd);
	return -1;
}

int proc_exited(pid_t pid)
{
	pid_t r;

	if (pid <= 0)
		return 1;
	do
		r = waitpid(pid, NULL, WNOHANG);
	while (r < 0 && errno == EINTR);
	return r == pid || (r < 0 && errno == ECHILD);
}

void proc_stop(pid_t pid, int grace_ms)
{
	struct timespec ts = {0, 20 * 1000000L};
	int waited = 0;

	if (pid <= 0)
		return;
	kill(-pid, SIGTERM); /* the group: chromedriver and the browser it started */
	kill(pid, SIGTERM);
	while (waited < grace_ms) {
		if (proc_exited(pid))
			break;
		nanosleep(&ts, NULL);
		waited += 20;
	}
	/* Whatever is left of the group (a browser outliving its driver) goes too. */
	kill(-pid, SIGKILL);
	if (!proc_exited(pid)) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
}

void proc_reap_all(int grace_ms)
{
	struct timespec ts = {0, 20 * 1000000L};
	char path[64], buf[512];
	struct dirent *e;
	int waited = 0;
	pid_t self = getpid();

	for (;;) {
		DIR *d;
		pid_t r;

		while ((r = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (r < 0 && errno == ECHILD)
			return;
		if (waited >= grace_ms) {
			/* Whatever still runs and was ours (as subreaper) is killed. */
			if ((d = opendir("/proc")) == NULL)
				return;
			while ((e = readdir(d)) != NULL) {
				long pid = strtol(e->d_name, NULL, 10), ppid;
				FILE *f;
				char *rp;
				if (pid <= 0)
					continue;
				snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
				if ((f = fopen(path, "re")) == NULL)
					continue;
				if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) &&
				    sscanf(rp + 2, "%*c %ld", &ppid) == 1 && ppid == self)
					kill((pid_t)pid, SIGKILL);
				fclose(f);
			}
			closedir(d);
			if (waited >= 2 * grace_ms)
				return;
		}
		nanosleep(&ts, NULL);
		waited += 20;
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int proc_rmtree(const char *path)
{
	if (path == NULL || path[0] == '\0')
		return 0;
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int proc_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}
