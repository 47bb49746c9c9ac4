/* libFuzzer: request handling inputs. Lines of the input become the method, the path, the
 * query string, the X-API-Key and If-None-Match headers. Parsing never crashes, a parsed
 * request holds only NUL-free, bounded values, and the key and ETag comparisons hold. */
#include "../../cgi/auth.h"
#include "../../cgi/req.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"REQUEST_METHOD=", "DOCUMENT_URI=", "QUERY_STRING=",
					    "HTTP_X_API_KEY=", "HTTP_IF_NONE_MATCH="};
	char *env[6] = {NULL}, *copy = malloc(size + 1), *p, *line, err[256];
	struct conf cf;
	FCGX_Request fr;
	struct req r;
	int i;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	for (i = 0; i < 5 && p; i++) {
		line = strsep(&p, "\n");
		env[i] = malloc(strlen(names[i]) + strlen(line) + 1);
		strcpy(env[i], names[i]);
		strcat(env[i], line);
	}
	memset(&cf, 0, sizeof(cf));
	memset(&fr, 0, sizeof(fr));
	fr.envp = env;
	if (req_parse(&r, &fr, &cf, err, sizeof(err)) == 0) {
		for (i = 0; i < Q__MAX; i++)
			if (r.qset[i] && strlen(r.q[i]) >= sizeof(r.q[i]))
				abort();
		(void)req_flag(&r, Q_REFRESH);
		(void)req_flag(&r, Q_STREAM);
	}
	if (env[4]) {
		/* A match needs the ETag itself or a "*" member; the ETag alone always matches. */
		const char *inm = env[4] + strlen(names[4]), *etag = "\"6b0ac4d0-46ffef2\"";
		int m = req_etag_match(inm, etag);
		if (m && strstr(inm, etag) == NULL && strchr(inm, '*') == NULL)
			abort();
		if (!m && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0))
			abort();
	}
	if (env[3]) {
		const char *k = env[3] + strlen(names[3]);
		if (auth_equal(k, strlen(k), "0123456789abcdef", 16) != (strcmp(k, "0123456789abcdef") == 0))
			abort();
	}
	for (i = 0; i < 5; i++)
		free(env[i]);
	free(copy);
	return 0;
}
