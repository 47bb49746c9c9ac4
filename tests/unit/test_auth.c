#include "../../cgi/auth.h"
#include "../../common/priv.h"
#include "t.h"

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
