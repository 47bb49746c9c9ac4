/* libFuzzer: request handling inputs. Lines of the input become the method, the path, the
 * query string, the X-API-Key and If-None-Match headers. Parsing never crashes, a parsed
 * request holds only NUL-free, bounded values, and the key and ETag comparisons hold. */
#include "../../cgi/auth.h"
#include "../../cgi/query.h"
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
	if (env[2]) {
		/* The query parser (issue 15): parses or fails with a message, resolves against a
		 * fixed set of columns, and its canonical form parses back to the same form. */
		static const char *const cols[] = {"id", "status", "note", "updated_at"};
		struct query q, q2;
		char qerr[512], *c, *c2;
		if (query_parse(&q, env[2] + strlen(names[2]), NULL, qerr, sizeof(qerr)) == 0 &&
		    query_resolve(&q, cols, 4, 0, 3, 1, qerr, sizeof(qerr)) == 0 &&
		    (c = query_canonical(&q, -1, NULL)) != NULL) {
			if (query_parse(&q2, c, NULL, qerr, sizeof(qerr)) != 0 ||
			    query_resolve(&q2, cols, 4, 0, 3, 1, qerr, sizeof(qerr)) != 0 ||
			    (c2 = query_canonical(&q2, -1, NULL)) == NULL || strcmp(c, c2) != 0)
				abort();
			free(c2);
			free(c);
			query_free(&q2);
		} else if (qerr[0] == '\0') {
			abort(); /* a refusal always says why */
		}
		query_free(&q);
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
