/*
 * snapidx: the index written beside each snapshot's data_cache.json, so the responders can
 * answer queries (pages, fields, filters, changes) without parsing the snapshot per request.
 * The sync writes it while converting (one pass, constant memory) and publishes it with the
 * snapshot, in the same folder, by the same rename: an index never describes another body.
 *
 * Files in snapshots/<id>/ (all integers little-endian, all offsets into data_cache.json):
 *
 *   rows.idx     struct snapidx_head (64 bytes), then nrows + 1 uint64 offsets:
 *                off[i] is the offset of row i's '{' (table order, as exported);
 *                off[nrows] is one past the ']' that closes "data".
 *                Row i's JSON object is the bytes [off[i], off[i+1] - 1): the byte at
 *                off[i+1] - 1 is the ',' or the ']' after it. With no rows, off[0] is one
 *                past the ']' of "data":[].
 *                Size: 8 bytes a row (1 % of a 731 MB body at 1,000,000 rows).
 *
 *   keys.idx     struct snapidx_head, then nrows struct snapidx_key sorted by (pk_hash,
 *                row): a lookup by primary key (after=, the diff) is a binary search.
 *                The sync always writes it; it is empty (head only, nkeys 0) when the
 *                table has no id_column or when the ids are not unique (no changes then).
 *                A reader treats a missing keys.idx like an empty one. Both heads carry
 *                the same nrows, ncols, id_col, updated_col, flags and data_size.
 *
 *   changes/<from-id>.json
 *                The tail of a changes_since answer, from the older snapshot <from-id> to
 *                this one: "added":[rows],"changed":[rows],"deleted":[ids]} (rows as in
 *                data, ids as JSON values of the id column). The responder writes the
 *                head {"status":"success","from":"\"<from-id>\"","to":"\"<this id>\"", and
 *                then sends this file as it is. One file per older snapshot still kept
 *                (keep_snapshots - 1 at most), written at build time by a merge of the
 *                two keys.idx (both sorted by pk_hash: streaming, constant memory).
 *                Written only when both snapshots have unique ids in the same id column;
 *                without the file, changes_since from <from-id> is 410. Within each array
 *                the order is keys.idx's (by pk_hash), not table order. An id is "the same"
 *                when its pk_hash is, a row "changed" when its row_hash differs (64-bit
 *                hashes: two ids colliding, a chance of about 3 in 10^8 at 10^6 rows,
 *                would misreport those rows).
 *
 * Rows are the converter's own compact JSON: {"<col 1>":<v>,"<col 2>":<v>,...} with every
 * column, in columns.json's order, each value a JSON string or null. snapidx_row_fields()
 * splits one into value spans without a general JSON parser.
 *
 * Flags: SNAPIDX_IDS_INTEGER and SNAPIDX_IDS_UNIQUE are set (vacuously) for an empty table
 * with the id column; neither is set without it. SNAPIDX_ROWHASH_XXH3 says which function
 * made the row hashes: XXH3 (twice snapidx_hash's speed), set by every build since; an
 * older snapshot's hashes were snapidx_hash's, so no changes file is made from one.
 */
#ifndef PMACACHE_SNAPIDX_H
#define PMACACHE_SNAPIDX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SNAPIDX_ROWS "rows.idx"
#define SNAPIDX_KEYS "keys.idx"
#define SNAPIDX_CHANGES "changes" /* folder */
#define SNAPIDX_MAGIC_ROWS "PMCROWS1"
#define SNAPIDX_MAGIC_KEYS "PMCKEYS1"

/* Flags in snapidx_head.flags */
#define SNAPIDX_IDS_INTEGER 0x1  /* every id is a decimal integer (optional '-'), fits int64 */
#define SNAPIDX_IDS_UNIQUE 0x2   /* no id occurs twice (keys.idx is usable) */
#define SNAPIDX_ROWHASH_XXH3 0x4 /* row_hash is XXH3_64bits (libxxhash); unset: snapidx_hash */

struct snapidx_head {
	char magic[8];        /* SNAPIDX_MAGIC_ROWS or SNAPIDX_MAGIC_KEYS */
	uint64_t nrows;       /* rows in the snapshot */
	uint64_t nkeys;       /* keys.idx: entries that follow; rows.idx: nrows + 1 */
	uint32_t ncols;       /* columns per row */
	int32_t id_col;       /* index of id_column among the columns, or -1 */
	int32_t updated_col;  /* index of updated_column, or -1 */
	uint32_t flags;       /* SNAPIDX_IDS_*, SNAPIDX_ROWHASH_* */
	uint64_t data_size;   /* size of data_cache.json: a mismatched index is refused */
	uint64_t reserved[2]; /* zero */
};

struct snapidx_key {
	uint64_t pk_hash;  /* hash of the id value's JSON text (snapidx_hash) */
	uint64_t row_hash; /* hash of the row's whole JSON object (see flags): changed or not */
	uint64_t row;      /* row number in table order */
};

/* One value of a row: the bytes of its JSON text inside the row. null is the 4 bytes null;
 * a string includes its quotes and stays escaped. */
struct snapidx_span {
	uint32_t off; /* from the row's '{' */
	uint32_t len;
};

/* 64-bit hash of len bytes: the ids' (pk_hash). Stable across versions: it is stored in
 * keys.idx, and a responder looks an id up by it. */
uint64_t snapidx_hash(const void *p, size_t len);

/*
 * Split one row object (as the converter writes it) into its ncols value spans. Returns 0,
 * or -1 when the row does not have that shape (a corrupt snapshot: the caller answers 500).
 * Costs one pass over the row; no allocation.
 */
int snapidx_row_fields(const char *row, size_t len, uint32_t ncols, struct snapidx_span *out);

/* The spans of a row's first fields only (at most max, out may be NULL): how many there are
 * (fewer than max when the row ends first), or -1 for a row of another shape. For reading a
 * leading column without scanning the whole row, or counting a row's columns (max large). */
long snapidx_row_prefix(const char *row, size_t len, uint32_t max, struct snapidx_span *out);

/* Write the JSON string value v (with quotes, escaped as the converter escapes CSV fields)
 * to dst (6 * len + 3 bytes), so a filter value compares with a span byte for byte. */
size_t snapidx_json_string(char *dst, const char *v, size_t len);

/* Open a snapshot's index for reading: rows.idx mapped (8 bytes a row, shared page cache),
 * keys.idx mapped when present. dfd is the snapshot folder. Returns 0, or -1 with err. */
struct snapidx {
	struct snapidx_head head;
	const uint64_t *off; /* nrows + 1 */
	size_t off_map_len;
	const struct snapidx_key *keys; /* head of keys.idx's entries, or NULL */
	uint64_t nkeys;
	size_t keys_map_len;
};
int snapidx_open(int dfd, uint64_t data_size, struct snapidx *ix, char *err, size_t errlen);
void snapidx_close(struct snapidx *ix);

/* The row whose id's JSON text is id (quotes included), or -1. Uses keys.idx; the caller
 * confirms the match against the row itself (hashes can collide). */
long long snapidx_find(const struct snapidx *ix, const char *id, size_t len);

#endif
