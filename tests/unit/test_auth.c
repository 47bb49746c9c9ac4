#include "../../cgi/auth.h"
#include "../../common/priv.h"
#include "t.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct {
	const char *given;
	int ok;
} cases[] = {
    {"0123456789abcdef0123", 1},
    {"0123456789abcdef012", 0},
    {"0123456789abcdef01234", 0},
    {"0123456789ABCDEF0123", 0},
    {" 0123456789abcdef0123", 0},
    {"0123456789abcdef0123 ", 0},
    {"", 0},
    {"x", 0},
    {"second-key-abcdefghij", 1},
    {"# comment-not-a-key-xx", 0},
    {"short", 0},
};

void test_auth(void)
{
	const char *path;
	struct timespec ts[2];
	size_t i;

	CHECK(auth_equal("abc", 3, "abc", 3), "equal");
	CHECK(!auth_equal("abd", 3, "abc", 3), "differs in last byte");
	CHECK(!auth_equal("ab", 2, "abc", 3), "prefix");
	CHECK(!auth_equal("abcd", 4, "abc", 3), "longer");
	CHECK(!auth_equal("", 0, "abc", 3), "empty");

	path = t_file("keys", "# keys\n0123456789abcdef0123\n\n  second-key-abcdefghij  \r\n"
	                      "# comment-not-a-key-xx\nshort\n");
	/* Too open: no key is accepted (one message says why). */
	chmod(path, 0644);
	CHECK(!auth_check(path, "0123456789abcdef0123"), "key file 0644 refused");
	chmod(path, 0600);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(auth_check(path, cases[i].given) == cases[i].ok, "key '%s' want %d",
		      cases[i].given, cases[i].ok);
	CHECK(!auth_check(path, NULL), "no header");

	/* Edits take effect without a restart. */
	t_file("keys", "a-brand-new-key-0000000\n");
	chmod(path, 0640);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) + 5;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	utimensat(0, path, ts, 0);
	CHECK(auth_check(path, "a-brand-new-key-0000000"), "new key accepted after edit");
	CHECK(!auth_check(path, "0123456789abcdef0123"), "removed key refused after edit");
	chmod(path, 0660);
	utimensat(0, path, NULL, 0);
	CHECK(!auth_check(path, "a-brand-new-key-0000000"), "key file 0660 refused");
	CHECK(!auth_check("/nonexistent/keys", "0123456789abcdef0123"),
	      "missing file admits nobody");

	/* The one rule for both secret files. */
	{
		static const struct {
			mode_t mode;
			int ok;
		} modes[] = {{0600, 1}, {0640, 1}, {0400, 1}, {0440, 1}, {0644, 0},
		             {0660, 0}, {0604, 0}, {0700, 0}, {04600, 0}};
		struct stat st;
		char err[512];
		memset(&st, 0, sizeof(st));
		st.st_uid = geteuid();
		for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			st.st_mode = S_IFREG | modes[i].mode;
			err[0] = '\0';
			CHECK((priv_secret_ok("k", "/f", &st, err, sizeof(err)) == 0) ==
			          modes[i].ok,
			      "mode %04o want %d", (unsigned)modes[i].mode, modes[i].ok);
			CHECK(modes[i].ok || strstr(err, "k /f: mode") != NULL, "message: %s", err);
		}
		st.st_mode = S_IFREG | 0600;
		st.st_uid = geteuid() == 0 ? 12345 : geteuid() + 1;
		CHECK(priv_secret_ok("k", "/f", &st, err, sizeof(err)) < 0 &&
		          strstr(err, "owned by root or") != NULL,
		      "another owner refused: %s", err);
		st.st_uid = 0;
		CHECK(priv_secret_ok("k", "/f", &st, err, sizeof(err)) == 0,
		      "root's file accepted");
		st.st_mode = S_IFDIR | 0600;
		CHECK(priv_secret_ok("k", "/f", &st, err, sizeof(err)) < 0, "a folder refused");
	}
}

/* Issue 13: long lines, many keys, rewrites that keep size and mtime. */
void test_auth_hostile(void)
{
	char *text, key[64];
	const char *path;
	struct stat st;
	struct timespec ts[2];
	size_t i, off = 0;
	FILE *f;

	/* A 1,100-byte comment whose tail, after byte 1023, looks like a key. */
	text = malloc(4096);
	off += (size_t)sprintf(text + off, "# ");
	memset(text + off, 'c', 1021);
	off += 1021;
	off += (size_t)sprintf(text + off, "tail-of-a-comment-0123456789\n");
	/* A key of 300 bytes: refused, and no part of it becomes a key. */
	memset(text + off, 'k', 300);
	off += 300;
	off += (size_t)sprintf(text + off, "\nthe-real-key-0123456789\n");
	text[off] = '\0';
	path = t_file("keys-long", text);
	CHECK(auth_check(path, "the-real-key-0123456789"), "key after long lines accepted");
	CHECK(!auth_check(path, "tail-of-a-comment-0123456789"),
	      "the tail of a long comment is not a key");
	memset(key, 'k', 40);
	key[40] = '\0';
	CHECK(!auth_check(path, key), "no slice of an overlong key is a key");
	CHECK(auth_count() == 1, "one key loaded, got %zu", auth_count());

	/* 500 keys: all of them work (the old reader stopped at 64). */
	path = t_file("keys-many", "");
	f = fopen(path, "w");
	for (i = 0; i < 500; i++)
		fprintf(f, "key-number-%08zu-abcdef\n", i);
	fclose(f);
	CHECK(auth_check(path, "key-number-00000000-abcdef"), "first of 500 keys");
	CHECK(auth_check(path, "key-number-00000064-abcdef"), "65th of 500 keys");
	CHECK(auth_check(path, "key-number-00000499-abcdef"), "500th of 500 keys");
	CHECK(auth_count() == 500, "500 keys loaded, got %zu", auth_count());

	/* A same-size rewrite with the mtime put back (`touch -r`): the old key is revoked. */
	path = t_file("keys-rw", "revoked-key-aaaaaaaaaaaa\n");
	ts[0].tv_sec = ts[1].tv_sec = 1700000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	utimensat(AT_FDCWD, path, ts, 0);
	CHECK(auth_check(path, "revoked-key-aaaaaaaaaaaa"), "key works before the rewrite");
	stat(path, &st);
	t_file("keys-rw", "replaced-key-bbbbbbbbbbb\n");
	utimensat(AT_FDCWD, path, ts, 0);
	CHECK(!auth_check(path, "revoked-key-aaaaaaaaaaaa"), "revoked key refused after rewrite");
	CHECK(auth_check(path, "replaced-key-bbbbbbbbbbb"), "new key accepted after rewrite");
	free(text);
}
