#include "snapidx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define C1 0x87c37b91114253d5ULL
#define C2 0x4cf5ad432745937fULL
#define C3 0x9e3779b97f4a7c15ULL

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t rd64(const unsigned char *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

static inline uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

/* Two lanes of 8-byte words (murmur3's mixing), the tail zero-padded, the length folded in
 * at the end. Stable: the values are stored in keys.idx. */
uint64_t snapidx_hash(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h1 = C3, h2 = C3 ^ C1, w = 0;
	size_t i = 0;

	for (; i + 16 <= len; i += 16) {
		h1 = rotl64(h1 ^ (rotl64(rd64(s + i) * C1, 31) * C2), 27) * 5 + 0x52dce729;
		h2 = rotl64(h2 ^ (rotl64(rd64(s + i + 8) * C2, 33) * C1), 31) * 5 + 0x38495ab5;
	}
	if (i + 8 <= len) {
		h1 = rotl64(h1 ^ (rotl64(rd64(s + i) * C1, 31) * C2), 27) * 5 + 0x52dce729;
		i += 8;
	}
	for (size_t k = 0; i + k < len; k++)
		w |= (uint64_t)s[i + k] << (8 * k);
	h2 ^= rotl64(w * C2, 33) * C1;
	h1 ^= (uint64_t)len;
	h2 ^= (uint64_t)len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	return h1 + h2;
}

/* The end of the JSON string starting at r[i] == '"': the index of its closing quote. */
static inline ssize_t str_end(const char *r, size_t len, size_t i)
{
	size_t j = i + 1;

	for (;;) {
		const char *q = j < len ? memchr(r + j, '"', len - j) : NULL;
		size_t k, bs = 0;
		if (q == NULL)
			return -1;
		k = (size_t)(q - r);
		while (k - bs > i + 1 && r[k - bs - 1] == '\\')
			bs++;
		if ((bs & 1) == 0)
			return (ssize_t)k;
		j = k + 1;
	}
}

/* The spans of the first max fields of a row; returns how many were found before the
 * closing '}' (at most max), or -1 for a row of another shape. With complete set, the
 * row must end right after that many fields. */
static long row_scan(const char *r, size_t len, uint32_t max, struct snapidx_span *out,
                     int complete)
{
	size_t i = 1;
	uint32_t n = 0;

	if (len < 2 || len > UINT32_MAX || r[0] != '{')
		return -1;
	if (r[1] == '}')
		return len == 2 ? 0 : -1;
	for (;;) {
		ssize_t e;
		size_t v;
		if (n == max)
			return complete ? -1 : (long)n;
		/* "key": */
		if (i >= len || r[i] != '"' || (e = str_end(r, len, i)) < 0)
			return -1;
		i = (size_t)e + 1;
		if (i >= len || r[i] != ':')
			return -1;
		v = ++i;
		if (i < len && r[i] == '"') {
			if ((e = str_end(r, len, i)) < 0)
				return -1;
			i = (size_t)e + 1;
		} else if (len - i >= 4 && memcmp(r + i, "null", 4) == 0) {
			i += 4;
		} else {
			return -1;
		}
		if (out) {
			out[n].off = (uint32_t)v;
			out[n].len = (uint32_t)(i - v);
		}
		n++;
		if (i >= len)
			return -1;
		if (r[i] == '}') {
			if (i + 1 != len || (complete && n != max))
				return -1;
			return (long)n;
		}
		if (r[i] != ',')
			return -1;
		i++;
	}
}

int snapidx_row_fields(const char *row, size_t len, uint32_t ncols, struct snapidx_span *out)
{
	return row_scan(row, len, ncols, out, 1) == (long)ncols ? 0 : -1;
}

long snapidx_row_prefix(const char *row, size_t len, uint32_t max, struct snapidx_span *out)
{
	return row_scan(row, len, max, out, 0);
}

static const char hexd[] = "0123456789abcdef";

/* The converter's escaping (sync/csv.c: csv_json_escape), for the responders, which do not
 * link the converter. tests/unit/test_snapidx.c checks that both agree. */
size_t snapidx_json_string(char *dst, const char *v, size_t len)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t o = 0, i = 0;

	dst[o++] = '"';
	while (i < len) {
		unsigned char c = s[i];
		int need;
		unsigned char lo = 0x80, hi = 0xBF;
		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\') {
				dst[o++] = (char)c;
			} else {
				dst[o++] = '\\';
				switch (c) {
				case '"':
				case '\\':
					dst[o++] = (char)c;
					break;
				case '\n':
					dst[o++] = 'n';
					break;
				case '\r':
					dst[o++] = 'r';
					break;
				case '\t':
					dst[o++] = 't';
					break;
				case '\b':
					dst[o++] = 'b';
					break;
				case '\f':
					dst[o++] = 'f';
					break;
				default:
					dst[o++] = 'u';
					dst[o++] = '0';
					dst[o++] = '0';
					dst[o++] = hexd[c >> 4];
					dst[o++] = hexd[c & 15];
				}
			}
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			need = 1;
		else if (c == 0xE0)
			need = 2, lo = 0xA0;
		else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
			need = 2;
		else if (c == 0xED)
			need = 2, hi = 0x9F;
		else if (c == 0xF0)
			need = 3, lo = 0x90;
		else if (c >= 0xF1 && c <= 0xF3)
			need = 3;
		else if (c == 0xF4)
			need = 3, hi = 0x8F;
		else
			need = 0;
		if (need == 0) { /* not a lead byte: replaced, consumed */
			memcpy(dst + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		{
			size_t k = 1;
			while (k <= (size_t)need && i + k < len && s[i + k] >= lo &&
			       s[i + k] <= hi) {
				lo = 0x80;
				hi = 0xBF;
				k++;
			}
			if (k == (size_t)need + 1) {
				memcpy(dst + o, s + i, k);
				o += k;
			} else {
				/* an invalid or cut sequence: one U+FFFD, and the byte that broke
				 * it is read again from scratch */
				memcpy(dst + o, "\xef\xbf\xbd", 3);
				o += 3;
			}
			i += k;
		}
	}
	dst[o++] = '"';
	return o;
}

/* Map name from dfd whole, checking its head. Returns the map or MAP_FAILED (errno kept in
 * err). ENOENT is left in errno for the caller. */
static void *map_file(int dfd, const char *name, const char *magic, size_t *len, char *err,
                      size_t errlen)
{
	struct stat st;
	void *m;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", name, strerror(e));
		errno = e;
		return MAP_FAILED;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size < sizeof(struct snapidx_head)) {
		snprintf(err, errlen, "%s: not an index (%lld bytes)", name, (long long)st.st_size);
		close(fd);
		errno = EINVAL;
		return MAP_FAILED;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "%s: mmap: %s", name, strerror(errno));
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (memcmp(m, magic, 8) != 0) {
		snprintf(err, errlen, "%s: bad magic (not a %s index)", name, magic);
		munmap(m, (size_t)st.st_size);
		errno = EINVAL;
		return MAP_FAILED;
	}
	*len = (size_t)st.st_size;
	return m;
}

int snapidx_open(int dfd, uint64_t data_size, struct snapidx *ix, char *err, size_t errlen)
{
	const struct snapidx_head *h;
	void *m;
	size_t len;

	memset(ix, 0, sizeof(*ix));
	if ((m = map_file(dfd, SNAPIDX_ROWS, SNAPIDX_MAGIC_ROWS, &len, err, errlen)) == MAP_FAILED)
		return -1;
	h = m;
	ix->head = *h;
	ix->off = (const uint64_t *)((const char *)m + sizeof(*h));
	ix->off_map_len = len;
	if (h->nrows > (UINT64_MAX - sizeof(*h)) / 8 - 1 || h->nkeys != h->nrows + 1 ||
	    len != sizeof(*h) + 8 * (h->nrows + 1)) {
		snprintf(err, errlen, "%s: %zu bytes for %llu rows: truncated or corrupt",
		         SNAPIDX_ROWS, len, (unsigned long long)h->nrows);
		goto bad;
	}
	if (h->data_size != data_size) {
		snprintf(err, errlen, "%s: describes a %llu-byte body, not this one of %llu bytes",
		         SNAPIDX_ROWS, (unsigned long long)h->data_size,
		         (unsigned long long)data_size);
		goto bad;
	}
	if (ix->off[h->nrows] > data_size || ix->off[0] > ix->off[h->nrows] ||
	    (h->nrows && ix->off[0] == 0) || h->ncols == 0 || h->id_col >= (int32_t)h->ncols ||
	    h->updated_col >= (int32_t)h->ncols || h->id_col < -1 || h->updated_col < -1) {
		snprintf(err, errlen, "%s: offsets or columns out of range: corrupt", SNAPIDX_ROWS);
		goto bad;
	}

	if ((m = map_file(dfd, SNAPIDX_KEYS, SNAPIDX_MAGIC_KEYS, &len, err, errlen)) ==
	    MAP_FAILED) {
		if (errno == ENOENT)
			return 0; /* no keys: lookups by id are not possible */
		goto bad;
	}
	h = m;
	if (h->nkeys > (UINT64_MAX - sizeof(*h)) / sizeof(struct snapidx_key) ||
	    len != sizeof(*h) + sizeof(struct snapidx_key) * h->nkeys ||
	    h->nrows != ix->head.nrows || h->data_size != data_size ||
	    (h->nkeys != 0 && h->nkeys != h->nrows)) {
		snprintf(err, errlen, "%s: does not match %s or the body: truncated or corrupt",
		         SNAPIDX_KEYS, SNAPIDX_ROWS);
		munmap(m, len);
		goto bad;
	}
	if (h->nkeys == 0) {
		munmap(m, len);
		return 0;
	}
	ix->keys = (const struct snapidx_key *)((const char *)m + sizeof(*h));
	ix->nkeys = h->nkeys;
	ix->keys_map_len = len;
	return 0;
bad:
	snapidx_close(ix);
	return -1;
}

void snapidx_close(struct snapidx *ix)
{
	if (ix->off)
		munmap((char *)ix->off - sizeof(struct snapidx_head), ix->off_map_len);
	if (ix->keys)
		munmap((char *)ix->keys - sizeof(struct snapidx_head), ix->keys_map_len);
	memset(ix, 0, sizeof(*ix));
}

long long snapidx_find(const struct snapidx *ix, const char *id, size_t len)
{
	uint64_t h, lo = 0, hi;

	if (ix->keys == NULL)
		return -1;
	h = snapidx_hash(id, len);
	hi = ix->nkeys;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ix->keys[mid].pk_hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ix->nkeys && ix->keys[lo].pk_hash == h && ix->keys[lo].row < ix->head.nrows)
		return (long long)ix->keys[lo].row;
	return -1;
}
