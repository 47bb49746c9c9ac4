/*
 * The index the sync writes (sync/index.c through snap_build): checked against json-c's
 * parse of the snapshot it describes, on generated tables with hostile values, a row longer
 * than the converter's buffer, several sort runs, duplicate and missing ids; and the
 * changes between three imports (add, change, delete, delete and re-add) against the same
 * computation done with json-c.
 */
#include "../../common/cache.h"
#include "../../common/snapidx.h"
#include "../../sync/index.h"
#include "../../sync/snap.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NROWS 40000 /* three sort runs of IDXW_RUN_KEYS */
#define LONG_ID 7   /* this row holds a value longer than the converter's 1 MiB buffer */

/* The version of each id in a table: -1 absent. Row order: ascending ids, then the ids of
 * tail[] (re-added rows, appended at the end as a database would). */
struct table {
	int ver[NROWS + 200];
	int tail[64];
	int ntail;
	int dup;   /* write id 1 twice */
	int no_id; /* name the id column "key" */
};

static void put_row(FILE *f, int id, int v)
{
	static const char *const names[] = {"plain",
	                                    "he said \"\"hi\"\", then, left",
	                                    "line\nbreak\r\nand\rcr",
	                                    "back\\\\slash\\\\",
	                                    "\xf0\x9f\x8e\x89 \xe8\xab\x8b \xd7\xa9 ü",
	                                    "tab\there\x01"};
	int k = (id + v) % 7;

	fprintf(f, "\"%d\",\"%s %d v%d\",", id, names[(id + v) % 6], id, v);
	if (id == LONG_ID) {
		fputc('"', f);
		for (int i = 0; i < 1536 * 1024; i++)
			fputc('a' + (i + v) % 26, f);
		fputs("\",", f);
	} else {
		fputs(k == 0   ? "NULL,"
		      : k == 1 ? "\"NULL\","
		      : k == 2 ? ","
		               : "\"n,\"\"q\"\"\",",
		      f);
	}
	fprintf(f, "\"2026-01-01 00:%02d:%02d\"\n", v, id % 60);
}

static int table_csv(const struct table *t)
{
	int fd = memfd_create("export", 0);
	FILE *f;

	if (fd < 0 || (f = fdopen(dup(fd), "w")) == NULL)
		return -1;
	fprintf(f, "\"%s\",\"name\",\"note\",\"updated_at\"\n", t->no_id ? "key" : "id");
	for (int id = 1; id < NROWS + 200; id++) {
		int tailed = 0;
		for (int j = 0; j < t->ntail; j++)
			tailed |= t->tail[j] == id;
		if (t->ver[id] >= 0 && !tailed)
			put_row(f, id, t->ver[id]);
	}
	for (int j = 0; j < t->ntail; j++)
		put_row(f, t->tail[j], t->ver[t->tail[j]]);
	if (t->dup)
		put_row(f, 1, 9);
	fclose(f);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int build(const char *dir, const struct table *t, char *id, size_t idlen)
{
	struct snap_opts o = {.cache_dir = dir, .min_rows_ratio = 0, .keep_snapshots = 3};
	struct snap_result r;
	char err[512];
	int fd = table_csv(t), rc;

	if (fd < 0)
		return -1;
	rc = snap_build(fd, "t.csv", &o, &r, err, sizeof(err));
	close(fd);
	CHECK(rc == SNAP_OK, "build: %s", err);
	snprintf(id, idlen, "%s", r.id);
	return rc == SNAP_OK ? 0 : -1;
}

static struct json_object *read_json(const char *path, const char *prefix)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);
	struct json_object *o = NULL;
	size_t pl = strlen(prefix);

	if (fd < 0 || fstat(fd, &st) < 0 || (buf = malloc((size_t)st.st_size + pl + 1)) == NULL) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	memcpy(buf, prefix, pl);
	if (read(fd, buf + pl, (size_t)st.st_size) == st.st_size) {
		buf[pl + (size_t)st.st_size] = '\0';
		o = json_tokener_parse(buf);
	}
	close(fd);
	free(buf);
	return o;
}

/* The snapshot's rows.idx and keys.idx against json-c's parse of its data_cache.json. */
static void check_index(const char *snapdir, int want_keys, const char *what)
{
	char path[600], err[256];
	struct json_object *doc, *data;
	struct snapidx ix;
	struct stat st;
	int dfd = open(snapdir, O_RDONLY | O_DIRECTORY), fd;
	char *body;
	size_t n, bad = 0, badfind = 0;

	snprintf(path, sizeof(path), "%s/%s", snapdir, CACHE_DATA);
	fd = open(path, O_RDONLY);
	if (dfd < 0 || fd < 0 || fstat(fd, &st) < 0) {
		CHECK(0, "%s: open %s", what, path);
		return;
	}
	body = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	doc = read_json(path, "");
	CHECK(doc && json_object_object_get_ex(doc, "data", &data), "%s: the body parses", what);
	if (doc == NULL || body == MAP_FAILED)
		return;
	json_object_object_get_ex(doc, "data", &data);
	n = json_object_array_length(data);
	CHECK(snapidx_open(dfd, (uint64_t)st.st_size, &ix, err, sizeof(err)) == 0, "%s: open: %s",
	      what, err);
	CHECK(ix.head.nrows == n && ix.head.ncols == 4, "%s: %llu rows, %u columns (json-c: %zu)",
	      what, (unsigned long long)ix.head.nrows, ix.head.ncols, n);
	CHECK(ix.head.updated_col == 3 && ix.head.id_col == (want_keys < 0 ? -1 : 0),
	      "%s: id_col %d, updated_col %d", what, ix.head.id_col, ix.head.updated_col);
	for (size_t i = 0; i < n && i < ix.head.nrows; i++) {
		struct json_object *row = json_object_array_get_idx(data, i), *jr;
		struct snapidx_span sp[4];
		const char *r = body + ix.off[i];
		size_t len = ix.off[i + 1] - 1 - ix.off[i];
		char *copy = strndup(r, len);
		int ok = r[0] == '{' && (r[len] == ',' || r[len] == ']') &&
		         snapidx_row_fields(r, len, 4, sp) == 0;
		jr = json_tokener_parse(copy);
		ok = ok && jr && json_object_equal(jr, row);
		for (int c = 0; ok && c < 4; c++) { /* each span is its column's value */
			char *v = strndup(r + sp[c].off, sp[c].len);
			struct json_object *jv = json_tokener_parse(v), *want = NULL;
			json_object_object_get_ex(row,
			                          c == 0   ? (want_keys < 0 ? "key" : "id")
			                          : c == 1 ? "name"
			                          : c == 2 ? "note"
			                                   : "updated_at",
			                          &want);
			ok = want ? (jv && json_object_equal(jv, want)) : strcmp(v, "null") == 0;
			json_object_put(jv);
			free(v);
		}
		if (!ok && bad++ < 3)
			fprintf(stderr, "%s: row %zu: %.80s\n", what, i, copy);
		/* lookup by id: the row found holds that id */
		if (want_keys > 0 && ok) {
			long long f = snapidx_find(&ix, r + sp[0].off, sp[0].len);
			if (f < 0 || ix.off[f] != ix.off[i])
				badfind++;
		}
		json_object_put(jr);
		free(copy);
	}
	CHECK(bad == 0, "%s: every row's offset and spans match json-c (%zu do not)", what, bad);
	CHECK(body[ix.off[ix.head.nrows] - 1] == ']' &&
	          ix.off[ix.head.nrows] + 1 == (uint64_t)st.st_size,
	      "%s: the last offset is one past the ']'", what);
	if (want_keys > 0) {
		CHECK(ix.keys != NULL && ix.nkeys == n &&
		          (ix.head.flags & (SNAPIDX_IDS_UNIQUE | SNAPIDX_IDS_INTEGER)) ==
		              (SNAPIDX_IDS_UNIQUE | SNAPIDX_IDS_INTEGER),
		      "%s: %llu keys, unique integer ids (flags %u)", what,
		      (unsigned long long)ix.nkeys, ix.head.flags);
		for (uint64_t i = 1; i < ix.nkeys; i++)
			if (ix.keys[i - 1].pk_hash > ix.keys[i].pk_hash)
				badfind++;
		CHECK(badfind == 0, "%s: keys sorted, every id found (%zu not)", what, badfind);
		CHECK(snapidx_find(&ix, "\"0\"", 3) == -1 && snapidx_find(&ix, "1", 1) == -1,
		      "%s: absent ids are not found", what);
	} else {
		CHECK(ix.keys == NULL && !(ix.head.flags & SNAPIDX_IDS_UNIQUE),
		      "%s: no keys (flags %u)", what, ix.head.flags);
	}
	snapidx_close(&ix);
	munmap(body, (size_t)st.st_size);
	json_object_put(doc);
	close(dfd);
}

/* id -> row of a body's data, as a JSON object keyed by the id's text. */
static struct json_object *by_id(const char *snapdir)
{
	char path[600];
	struct json_object *doc, *data, *map = json_object_new_object();

	snprintf(path, sizeof(path), "%s/%s", snapdir, CACHE_DATA);
	doc = read_json(path, "");
	if (doc == NULL || !json_object_object_get_ex(doc, "data", &data)) {
		json_object_put(doc);
		return map;
	}
	for (size_t i = 0; i < json_object_array_length(data); i++) {
		struct json_object *row = json_object_array_get_idx(data, i), *id;
		json_object_object_get_ex(row, "id", &id);
		json_object_object_add(map, json_object_get_string(id), json_object_get(row));
	}
	json_object_put(doc);
	return map;
}

/* changes/<from>.json in the snapshot to, against the same diff computed with json-c. */
static void check_changes(const char *dir, const char *from, const char *to, int want_add,
                          int want_chg, int want_del, const char *what)
{
	char a[600], b[600], path[800];
	struct json_object *old, *new, *ch, *added, *changed, *deleted;
	int e_add = 0, e_chg = 0, e_del = 0, bad = 0;

	snprintf(a, sizeof(a), "%s/snapshots/%s", dir, from);
	snprintf(b, sizeof(b), "%s/snapshots/%s", dir, to);
	snprintf(path, sizeof(path), "%s/changes/%s.json", b, from);
	old = by_id(a);
	new = by_id(b);
	ch = read_json(path, "{");
	CHECK(ch && json_object_object_get_ex(ch, "added", &added) &&
	          json_object_object_get_ex(ch, "changed", &changed) &&
	          json_object_object_get_ex(ch, "deleted", &deleted),
	      "%s: %s parses with added, changed, deleted", what, path);
	if (ch == NULL || !json_object_object_get_ex(ch, "added", &added) ||
	    !json_object_object_get_ex(ch, "changed", &changed) ||
	    !json_object_object_get_ex(ch, "deleted", &deleted))
		goto out;
	/* what json-c says */
	json_object_object_foreach(new, id, row)
	{
		struct json_object *was;
		if (!json_object_object_get_ex(old, id, &was))
			e_add++;
		else if (!json_object_equal(was, row))
			e_chg++;
	}
	json_object_object_foreach(old, oid, orow)
	{
		struct json_object *is;
		(void)orow;
		if (!json_object_object_get_ex(new, oid, &is))
			e_del++;
	}
	CHECK(e_add == want_add && e_chg == want_chg && e_del == want_del,
	      "%s: the test's tables differ as planned (%d %d %d)", what, e_add, e_chg, e_del);
	CHECK((int)json_object_array_length(added) == e_add &&
	          (int)json_object_array_length(changed) == e_chg &&
	          (int)json_object_array_length(deleted) == e_del,
	      "%s: %zu added, %zu changed, %zu deleted; json-c: %d, %d, %d", what,
	      json_object_array_length(added), json_object_array_length(changed),
	      json_object_array_length(deleted), e_add, e_chg, e_del);
	for (size_t i = 0; i < json_object_array_length(added); i++) {
		struct json_object *row = json_object_array_get_idx(added, i), *id, *x;
		json_object_object_get_ex(row, "id", &id);
		if (json_object_object_get_ex(old, json_object_get_string(id), &x) ||
		    !json_object_object_get_ex(new, json_object_get_string(id), &x) ||
		    !json_object_equal(x, row))
			bad++;
	}
	for (size_t i = 0; i < json_object_array_length(changed); i++) {
		struct json_object *row = json_object_array_get_idx(changed, i), *id, *x, *y;
		json_object_object_get_ex(row, "id", &id);
		if (!json_object_object_get_ex(old, json_object_get_string(id), &x) ||
		    !json_object_object_get_ex(new, json_object_get_string(id), &y) ||
		    !json_object_equal(y, row) || json_object_equal(x, row))
			bad++;
	}
	for (size_t i = 0; i < json_object_array_length(deleted); i++) {
		struct json_object *id = json_object_array_get_idx(deleted, i), *x;
		if (!json_object_is_type(id, json_type_string) ||
		    !json_object_object_get_ex(old, json_object_get_string(id), &x) ||
		    json_object_object_get_ex(new, json_object_get_string(id), &x))
			bad++;
	}
	CHECK(bad == 0, "%s: every entry is right (%d not)", what, bad);
out:
	json_object_put(ch);
	json_object_put(old);
	json_object_put(new);
}

static void three_imports(const char *dir)
{
	static struct table t;
	char id1[64], id2[64], id3[64], snap[600];

	for (int i = 0; i < NROWS + 200; i++)
		t.ver[i] = i >= 1 && i <= NROWS ? 0 : -1;
	if (build(dir, &t, id1, sizeof(id1)) < 0)
		return;
	snprintf(snap, sizeof(snap), "%s/snapshots/%s", dir, id1);
	check_index(snap, 1, "import 1");

	/* 2: delete ids ending in 03, change those ending in 04, add 100 */
	for (int i = 1; i <= NROWS; i++) {
		if (i % 100 == 3)
			t.ver[i] = -1;
		else if (i % 100 == 4)
			t.ver[i] = 1;
	}
	for (int i = NROWS + 1; i <= NROWS + 100; i++)
		t.ver[i] = 0;
	if (build(dir, &t, id2, sizeof(id2)) < 0)
		return;
	snprintf(snap, sizeof(snap), "%s/snapshots/%s", dir, id2);
	check_index(snap, 1, "import 2");
	check_changes(dir, id1, id2, 100, NROWS / 100, NROWS / 100, "1 to 2");

	/* 3: re-add 3, 103, ..., 903 (those under 500 as they were in 1, the others changed),
	 * at the end of the table; change those ending in 05; delete those ending in 06 and
	 * the long row */
	for (int i = 3; i < 1000; i += 100) {
		t.ver[i] = i < 500 ? 0 : 2;
		t.tail[t.ntail++] = i;
	}
	for (int i = 1; i <= NROWS; i++) {
		if (i % 100 == 5)
			t.ver[i] = 1;
		else if (i % 100 == 6 || i == LONG_ID)
			t.ver[i] = -1;
	}
	if (build(dir, &t, id3, sizeof(id3)) < 0)
		return;
	snprintf(snap, sizeof(snap), "%s/snapshots/%s", dir, id3);
	check_index(snap, 1, "import 3");
	/* from 2: the 10 re-added are added, 400 changed, 401 deleted */
	check_changes(dir, id2, id3, 10, NROWS / 100, NROWS / 100 + 1, "2 to 3");
	/* from 1: the 5 re-added as they were are unchanged, the other 5 changed; 390 still
	 * deleted; the 100 added in 2 are added; 400 ending in 04, 400 in 05 changed */
	check_changes(dir, id1, id3, 100, 5 + 2 * NROWS / 100, NROWS / 100 - 10 + NROWS / 100 + 1,
	              "1 to 3");

	/* A stop inside the diff's merge: -3, and no file left */
	{
		static volatile sig_atomic_t stop = 1;
		char old[600], err[256], path[800];
		struct stat st;
		int rc;
		snprintf(old, sizeof(old), "%s/snapshots/%s", dir, id1);
		rc = idx_diff(old, "stopped", snap, &stop, err, sizeof(err));
		snprintf(path, sizeof(path), "%s/changes/stopped.json", snap);
		CHECK(rc == -3 && strstr(err, "stopped") && stat(path, &st) < 0,
		      "a stop inside the diff: %d %s", rc, err);
		stop = 0;
		rc = idx_diff(old, "again", snap, &stop, err, sizeof(err));
		snprintf(path, sizeof(path), "%s/changes/again.json", snap);
		CHECK(rc == 0 && stat(path, &st) == 0, "without the stop it is written: %d %s", rc,
		      err);
	}

	/* 4: every row changes: a diff as big as the body is not written (410: refetch) */
	{
		char id4[64], path[800];
		struct stat st;
		for (int i = 0; i < NROWS + 200; i++)
			if (t.ver[i] >= 0)
				t.ver[i] = 3;
		if (build(dir, &t, id4, sizeof(id4)) < 0)
			return;
		snprintf(path, sizeof(path), "%s/snapshots/%s/changes/%s.json", dir, id4, id3);
		CHECK(stat(path, &st) < 0 && errno == ENOENT,
		      "every row changed: no changes file over 1/%d of the body", IDX_CHANGES_MAX);
		snprintf(snap, sizeof(snap), "%s/snapshots/%s", dir, id4);
		check_index(snap, 1, "import 4");
	}
}

/* No unique ids, or no id column: an index without keys, and no changes file. */
static void no_keys(const char *dir, int dup, const char *what)
{
	static struct table t;
	char id[64], snap[600], path[800];
	struct stat st;

	memset(&t, 0, sizeof(t));
	for (int i = 0; i < NROWS + 200; i++)
		t.ver[i] = i >= 1 && i <= 300 ? 0 : -1;
	t.dup = dup;
	t.no_id = !dup;
	if (build(dir, &t, id, sizeof(id)) < 0 || build(dir, &t, id, sizeof(id)) < 0)
		return;
	snprintf(snap, sizeof(snap), "%s/snapshots/%s", dir, id);
	check_index(snap, dup ? 0 : -1, what);
	snprintf(path, sizeof(path), "%s/changes", snap);
	CHECK(stat(path, &st) < 0 && errno == ENOENT, "%s: no changes", what);
}

void test_index(void)
{
	char d1[] = "/tmp/pmacache-index.XXXXXX", d2[] = "/tmp/pmacache-index.XXXXXX";
	char d3[] = "/tmp/pmacache-index.XXXXXX", cmd[200];

	if (mkdtemp(d1) == NULL || mkdtemp(d2) == NULL || mkdtemp(d3) == NULL) {
		CHECK(0, "setup: mkdtemp: %s", strerror(errno));
		return;
	}
	three_imports(d1);
	no_keys(d2, 1, "a duplicate id");
	no_keys(d3, 0, "no id column");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", d1, d2, d3);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove the test folders\n");
}
