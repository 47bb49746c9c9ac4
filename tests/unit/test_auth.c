#include "../../cgi/auth.h"
#include "t.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(auth_check(path, cases[i].given) == cases[i].ok, "key '%s' want %d",
		      cases[i].given, cases[i].ok);
	CHECK(!auth_check(path, NULL), "no header");

	/* Edits take effect without a restart. */
	t_file("keys", "a-brand-new-key-0000000\n");
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) + 5;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	utimensat(0, path, ts, 0);
	CHECK(auth_check(path, "a-brand-new-key-0000000"), "new key accepted after edit");
	CHECK(!auth_check(path, "0123456789abcdef0123"), "removed key refused after edit");
	CHECK(!auth_check("/nonexistent/keys", "0123456789abcdef0123"),
	      "missing file admits nobody");
}
