/* proc: child processes the slowcgi way, and removing a folder tree. */
#ifndef PMACACHE_PROC_H
#define PMACACHE_PROC_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Start path with argv and the explicit environment envp, in a process group of its own,
 * stdin and stdout on /dev/null, stderr on errpath (or /dev/null), every other fd closed,
 * signal mask and dispositions reset. Returns the pid, or -1 with err set.
 */
pid_t proc_start(const char *path, char *const argv[], char *const envp[], const char *errpath,
                 char *err, size_t errlen);

/*
 * Stop the child pid and its process group: SIGTERM, up to grace_ms, then SIGKILL, then
 * reap. Safe to call with pid <= 0 (does nothing).
 */
void proc_stop(pid_t pid, int grace_ms);

/*
 * Reap every child left, waiting up to grace_ms for them to end, then killing those still
 * there. With PR_SET_CHILD_SUBREAPER set, orphaned grandchildren (browser processes whose
 * driver is gone) are children too, so nothing outlives the sync.
 */
void proc_reap_all(int grace_ms);

/* Whether pid has exited (reaping it if so). */
int proc_exited(pid_t pid);

/* rm -rf path, not following symlinks. Returns 0, or -1. */
int proc_rmtree(const char *path);

/* A free TCP port on 127.0.0.1, or -1. */
int proc_free_port(void);

#endif
