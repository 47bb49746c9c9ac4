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
#include <xxhash.h>

#define NROWS 40000 /* three sort runs of IDXW_RUN_KEYS */
#define LONG_ID 7   /* this row holds a value longer than the converter's buffer */

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
		/* each key's row_hash is XXH3 of its row's bytes, long rows (hashed in pieces)
		 * too, and the flag says so */
		for (uint64_t i = 0; i < ix.nkeys; i++) {
			uint64_t r = ix.keys[i].row;
			if (r >= ix.head.nrows ||
			    XXH3_64bits(body + ix.off[r], ix.off[r + 1] - 1 - ix.off[r]) !=
			        ix.keys[i].row_hash)
				badfind++;
		}
		CHECK(badfind == 0 && (ix.head.flags & SNAPIDX_ROWHASH_XXH3),
		      "%s: every row_hash is its row's XXH3 (%zu not; flags %u)", what, badfind,
		      ix.head.flags);
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
	/* each array in keys.idx's order: by the hash of the id's JSON text (plain digits) */
	bad = 0;
	for (int a = 0; a < 3; a++) {
		struct json_object *arr = a == 0 ? added : a == 1 ? changed : deleted;
		uint64_t last = 0;
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *e = json_object_array_get_idx(arr, i), *id = e;
			char text[64];
			uint64_t h;
			if (a < 2)
				json_object_object_get_ex(e, "id", &id);
			snprintf(text, sizeof(text), "\"%s\"", json_object_get_string(id));
			h = snapidx_hash(text, strlen(text));
			bad += i > 0 && h < last;
			last = h;
		}
	}
	CHECK(bad == 0, "%s: each array is in pk_hash order (%d out of it)", what, bad);
out:
	json_object_put(ch);
	json_object_put(old);
	json_object_put(new);
}

static void many_deleted(const char *dir, struct table *t, const char *id4);

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

	/* An older build's snapshot (row hashes of another function): no changes file from it,
	 * and why; the same snapshot with the flag is diffed as above. */
	{
		char old[600], err[256] = "", path[800];
		struct snapidx_head h;
		struct stat st;
		int fd, rc = -9;
		snprintf(old, sizeof(old), "%s/snapshots/%s/%s", dir, id1, SNAPIDX_KEYS);
		if ((fd = open(old, O_RDWR | O_CLOEXEC)) >= 0 &&
		    pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
		    (h.flags & SNAPIDX_ROWHASH_XXH3)) {
			h.flags &= ~(uint32_t)SNAPIDX_ROWHASH_XXH3;
			if (pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h)) {
				snprintf(old, sizeof(old), "%s/snapshots/%s", dir, id1);
				rc = idx_diff(old, "older", snap, NULL, err, sizeof(err));
				h.flags |= SNAPIDX_ROWHASH_XXH3;
				if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
					rc = -9;
			}
		}
		if (fd >= 0)
			close(fd);
		CHECK(rc != -9, "older build: setup: the flag in %s", old);
		snprintf(path, sizeof(path), "%s/changes/older.json", snap);
		CHECK(rc == 1 && strstr(err, "older build") && stat(path, &st) < 0,
		      "a snapshot of an older build: no changes file (%d: %s)", rc, err);
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
		many_deleted(dir, &t, id4);
	}
}

/* 5 (after 4): delete 9,000 rows, change 500, add 99: more changed and deleted rows than
 * the diff's merge holds back (8,192), so those get passes of their own. */
static void many_deleted(const char *dir, struct table *t, const char *id4)
{
	char id5[64], snap[600];
	int del = 0, chg = 0, add = 0;

	for (int i = 1; i <= NROWS && del < 9000; i++) {
		if (t->ver[i] < 0)
			continue;
		if (i % 4 == 1) {
			t->ver[i] = -1;
			del++;
		} else if (i % 40 == 2 && chg < 500) {
			t->ver[i] = 4;
			chg++;
		}
	}
	for (int i = NROWS + 101; i < NROWS + 200; i++, add++)
		t->ver[i] = 4;
	if (build(dir, t, id5, sizeof(id5)) < 0)
		return;
	snprintf(snap, sizeof(snap), "%s/snapshots/%s", dir, id5);
	check_index(snap, 1, "import 5");
	check_changes(dir, id4, id5, add, chg, del, "4 to 5");
	CHECK(del == 9000 && chg == 500, "import 5 deletes %d and changes %d", del, chg);
}

/* The radix sort of a run, against qsort by (pk_hash, row): random hashes, hashes that
 * differ only in their top byte or two (many equal: ties keep row order), only in the low
 * byte, or not at all (every byte's pass skipped); an odd and an even number of passes. */
static int by_hash_row(const void *a, const void *b)
{
	const struct snapidx_key *x = a, *y = b;

	if (x->pk_hash != y->pk_hash)
		return x->pk_hash < y->pk_hash ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

static void sort_order(void)
{
	static const char *const what[] = {"random hashes", "only the top byte differs",
	                                   "only the top two bytes differ",
	                                   "only the low byte differs", "all hashes equal"};
	enum { N = IDXW_RUN_KEYS };
	static struct snapidx_key k[N], tmp[N], want[N];
	uint64_t x = 88172645463325252ULL;

	for (int c = 0; c < 5; c++) {
		size_t ties = 0;
		for (size_t i = 0; i < N; i++) {
			uint64_t h;
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			h = c == 0   ? x
			    : c == 1 ? (x % 5) << 56 | 0x00abcdef01234567ULL
			    : c == 2 ? (x % 300) << 48 | 0x0000cdef01234567ULL
			    : c == 3 ? 0xfedcba9876543200ULL | (x % 3)
			             : 0x0123456789abcdefULL;
			k[i] = (struct snapidx_key){h, x * 31, i};
			tmp[i] = (struct snapidx_key){~0ULL, ~0ULL, ~0ULL};
		}
		memcpy(want, k, sizeof(k));
		qsort(want, N, sizeof(want[0]), by_hash_row);
		for (size_t i = 1; i < N; i++)
			ties += want[i - 1].pk_hash == want[i].pk_hash;
		idx_sort_keys(k, tmp, N);
		CHECK(memcmp(k, want, sizeof(k)) == 0 && (c == 0 || ties > N / 2),
		      "radix sort, %s: the order of (pk_hash, row), %zu ties", what[c], ties);
	}
	k[0] = (struct snapidx_key){5, 6, 7};
	idx_sort_keys(k, tmp, 1);
	idx_sort_keys(k, NULL, 0);
	CHECK(k[0].pk_hash == 5 && k[0].row_hash == 6 && k[0].row == 7, "radix sort of one key");
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

/* The flags of the index of a one-column table of these ids. */
static int flags_of(const char *dir, const char *ids)
{
	struct snap_opts o = {.cache_dir = dir, .min_rows_ratio = 0, .force = 1};
	struct snap_result r;
	struct snapidx ix;
	char err[512], path[600];
	int fd = memfd_create("ids", 0), dfd, flags = -1;

	if (fd < 0 || write(fd, "\"id\"\n", 5) != 5 ||
	    write(fd, ids, strlen(ids)) != (ssize_t)strlen(ids))
		return -1;
	lseek(fd, 0, SEEK_SET);
	if (snap_build(fd, "ids.csv", &o, &r, err, sizeof(err)) != SNAP_OK) {
		close(fd);
		return -1;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s/snapshots/%s", dir, r.id);
	if ((dfd = open(path, O_RDONLY | O_DIRECTORY)) < 0)
		return -1;
	if (snapidx_open(dfd, (uint64_t)r.bytes, &ix, err, sizeof(err)) == 0) {
		/* the id flags; the row hash's is set in every build (check_index) */
		flags = (int)(ix.head.flags & ~(uint32_t)SNAPIDX_ROWHASH_XXH3);
		snapidx_close(&ix);
	}
	close(dfd);
	return flags;
}

static void id_flags(const char *dir)
{
	const int both = SNAPIDX_IDS_INTEGER | SNAPIDX_IDS_UNIQUE;

	CHECK(flags_of(dir, "\"9223372036854775807\"\n\"-9223372036854775808\"\n\"0\"\n") == both,
	      "int64's limits are integers");
	CHECK(flags_of(dir, "\"9223372036854775808\"\n\"1\"\n") == SNAPIDX_IDS_UNIQUE,
	      "past int64: not integers");
	CHECK(flags_of(dir, "\"-9223372036854775809\"\n") == SNAPIDX_IDS_UNIQUE,
	      "below int64: not integers");
	CHECK(flags_of(dir, "\"1\"\n\"1.5\"\n") == SNAPIDX_IDS_UNIQUE, "1.5 is not an integer");
	CHECK(flags_of(dir, "\"1\"\nNULL\n") == SNAPIDX_IDS_UNIQUE, "null is not an integer");
	CHECK(flags_of(dir, "\"\"\n\"-\"\n") == SNAPIDX_IDS_UNIQUE, "empty and - are not");
	CHECK(flags_of(dir, "\"7\"\n\"7\"\n") == SNAPIDX_IDS_INTEGER, "7 twice: not unique");
	CHECK(flags_of(dir, "\"7\"\n\"007\"\n") == both, "7 and 007 are different texts");
}

void test_index(void)
{
	char d1[] = "/tmp/pmacache-index.XXXXXX", d2[] = "/tmp/pmacache-index.XXXXXX";
	char d3[] = "/tmp/pmacache-index.XXXXXX", cmd[200];

	if (mkdtemp(d1) == NULL || mkdtemp(d2) == NULL || mkdtemp(d3) == NULL) {
		CHECK(0, "setup: mkdtemp: %s", strerror(errno));
		return;
	}
	sort_order();
	three_imports(d1);
	no_keys(d2, 1, "a duplicate id");
	no_keys(d3, 0, "no id column");
	id_flags(d3);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", d1, d2, d3);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove the test folders\n");
}
