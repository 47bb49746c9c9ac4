/* t: the smallest test harness. One CHECK is one counted behaviour. */
#ifndef PMACACHE_T_H
#define PMACACHE_T_H

#include <stdio.h>

extern int t_pass, t_fail;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			t_pass++;                                                                  \
		} else {                                                                           \
			t_fail++;                                                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

/* A file in a fresh temp folder holding text; returns its path (static buffer). */
const char *t_file(const char *name, const char *text);

void test_conf(void);
void test_auth(void);
void test_auth_hostile(void);
void test_limit(void);
void test_csv(void);
void test_csv_flush_mark(void);
void test_escape(void);
void test_req(void);
void test_req_long(void);
void test_cache(void);
void test_cache_beneath(void);
void test_gz(void);
void test_snap(void);
void test_snapidx(void);
void test_query(void);
void test_index(void);
void test_wd(void);
void test_status(void);
void test_stream(void);

#endif
