#include "../../sync/csv.h"
#include "t.h"

#include <string.h>

static const struct {
	const char *in;
	size_t len;
	const char *out;
} cases[] = {
    {"plain", 5, "plain"},
    {"q\"b\\s/", 6, "q\\\"b\\\\s/"},
    {"\n\r\t\b\f", 5, "\\n\\r\\t\\b\\f"},
    {"\x01\x1f", 2, "\\u0001\\u001f"},
    {"\0", 1, "\\u0000"},
    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"}, /* astral plane: kept as UTF-8 */
    {"\xc3\xa9", 2, "\xc3\xa9"},
    {"\xff", 1, "\xef\xbf\xbd"},
    {"\xf0\x9f\x98", 3, "\xef\xbf\xbd"},
    {"\xe2\x28\xa1", 3, "\xef\xbf\xbd(\xef\xbf\xbd"},
    {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    /* Overlong and surrogate forms: E0 needs A0..BF next, ED needs 80..9F, F0 needs 90..BF. */
    {"\xe0\x80\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xe0\xa0\x80", 3, "\xe0\xa0\x80"},
    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xed\x9f\xbf", 3, "\xed\x9f\xbf"},
    {"\xf0\x8f\xbf\xbf", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
};

void test_escape(void)
{
	char out[256];
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = csv_json_escape(out, cases[i].in, cases[i].len);
		CHECK(n == strlen(cases[i].out) && strcmp(out, cases[i].out) == 0,
		      "escape case %zu: got '%s' want '%s'", i, out, cases[i].out);
	}
}
