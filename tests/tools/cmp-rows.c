/*
 * cmp-rows: compare a /fetch-data body with the table as MariaDB returns it.
 *
 *   cmp-rows FETCH.json ROWS.jsonl COLUMNS.txt
 *
 * ROWS.jsonl holds one JSON array per row (SELECT JSON_ARRAY(CAST(c1 AS CHAR), ...)), in
 * the table's order; COLUMNS.txt the column names, one per line. Every row, every key (in
 * order) and every value must match: text as text, SQL NULL as null. Prints the first
 * differences and "N rows compared, N differences"; exits 0 only if there are none.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int diffs;

static void differ(long row, const char *col, const char *what)
{
	if (++diffs <= 10)
		fprintf(stderr, "row %ld, column %s: %s\n", row, col, what);
}

int main(int argc, char **argv)
{
	struct json_object *body, *data, *count;
	char cols[256][256], *line = NULL;
	size_t ncols = 0, cap = 0;
	ssize_t n;
	long row = 0;
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: cmp-rows FETCH.json ROWS.jsonl COLUMNS.txt\n");
		return 2;
	}
	if ((body = json_object_from_file(argv[1])) == NULL ||
	    !json_object_object_get_ex(body, "data", &data) ||
	    !json_object_object_get_ex(body, "count", &count)) {
		fprintf(stderr, "%s: not a /fetch-data body\n", argv[1]);
		return 2;
	}
	if ((f = fopen(argv[3], "r")) == NULL) {
		perror(argv[3]);
		return 2;
	}
	while (ncols < 256 && fgets(cols[ncols], sizeof(cols[0]), f)) {
		cols[ncols][strcspn(cols[ncols], "\n")] = '\0';
		if (cols[ncols][0])
			ncols++;
	}
	fclose(f);
	if ((f = fopen(argv[2], "r")) == NULL) {
		perror(argv[2]);
		return 2;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		struct json_object *want = json_tokener_parse(line), *got;
		struct json_object_iterator it, end;
		size_t i = 0;

		if (want == NULL || !json_object_is_type(want, json_type_array)) {
			fprintf(stderr, "%s:%ld: not a JSON array\n", argv[2], row + 1);
			return 2;
		}
		got = json_object_array_get_idx(data, (size_t)row);
		if (got == NULL) {
			differ(row, "-", "missing from /fetch-data");
			json_object_put(want);
			row++;
			continue;
		}
		it = json_object_iter_begin(got);
		end = json_object_iter_end(got);
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it), i++) {
			const char *k = json_object_iter_peek_name(&it);
			struct json_object *gv = json_object_iter_peek_value(&it);
			struct json_object *wv = json_object_array_get_idx(want, i);
			if (i >= ncols || strcmp(k, cols[i]) != 0) {
				differ(row, k, "unexpected key or key order");
				continue;
			}
			if (wv == NULL || json_object_get_type(wv) == json_type_null) {
				if (gv != NULL && json_object_get_type(gv) != json_type_null)
					differ(row, k, "want null");
			} else if (gv == NULL || json_object_get_type(gv) != json_type_string) {
				differ(row, k, "want a string");
			} else if (json_object_get_string_len(gv) !=
			               json_object_get_string_len(wv) ||
			           memcmp(json_object_get_string(gv), json_object_get_string(wv),
			                  (size_t)json_object_get_string_len(wv)) != 0) {
				char msg[600];
				snprintf(msg, sizeof(msg), "got \"%.200s\", want \"%.200s\"",
				         json_object_get_string(gv), json_object_get_string(wv));
				differ(row, k, msg);
			}
		}
		if (i != ncols)
			differ(row, "-", "wrong number of columns");
		json_object_put(want);
		row++;
	}
	fclose(f);
	free(line);
	if ((size_t)row != json_object_array_length(data))
		differ(row, "-", "/fetch-data has a different number of rows");
	if (json_object_get_int64(count) != row)
		differ(row, "-", "count differs from the table's row count");
	printf("%ld rows compared, %d differences\n", row, diffs);
	json_object_put(body);
	return diffs ? 1 : 0;
}
