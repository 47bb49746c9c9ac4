/*
 * csv: stream a phpMyAdmin CSV export into the /fetch-data JSON body, in constant memory.
 *
 * The dialect (phpMyAdmin 5.2, "CSV" plugin, columns in the first row): comma separated,
 * non-empty values enclosed in '"' with '"' doubled inside, the empty string written bare,
 * SQL NULL written as a bare NULL, records ending in LF or CRLF, values holding any bytes
 * (raw CR, LF, TAB, backslash, UTF-8). A leading UTF-8 BOM is skipped.
 *
 * Output: {"status":"success","count":N,"last_updated":"...","data":[{"col":"text"|null,...},...]}
 * on one line, compact, with no trailing newline (so it can travel in one SSE data: line).
 * The count is written padded with spaces and patched once known.
 *
 * Input: a regular file is parsed straight from its mapping, a window at a time, anything
 * else (a pipe) as read(2) gives it; the output is the same for any cut of the input.
 *
 * Memory: the output is flushed every CSV_FLUSH_AT bytes, inside a field too, so a long value
 * costs no memory. Only the header is kept (its names are every row's keys): the header row
 * and every field are limited to max_field bytes, so the memory bound is set by that limit,
 * never by the input.
 */
#ifndef PMACACHE_CSV_H
#define PMACACHE_CSV_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#define CSV_MAX_FIELD (16 * 1024 * 1024) /* the default max_field */

struct csv_result {
	long long rows;
	long long bytes_in;
	long long bytes_out;
	long long replaced; /* invalid UTF-8 sequences replaced by U+FFFD */
	char *columns;      /* JSON array of the column names; caller frees */
};

/* Where the JSON goes: an fd (out_fd >= 0) or, for tests, a growing memory buffer. */
struct csv_out {
	int fd;
	char *mem; /* with fd < 0: the output, NUL-terminated; caller frees */
	size_t mem_len;
	/* With fd >= 0: called with every chunk written, in order (a second consumer such as
	 * the gzip copy): len bytes at *buf, in a buffer of *cap bytes. The tap may take the
	 * buffer itself rather than copy it: it then puts one of its own in its place (any
	 * size, or NULL with 0), and the converter goes on in that one. The converter may
	 * still read the buffer it handed over until its next call of the tap. Returns 0, or
	 * -1 to stop the conversion as a write failure. */
	int (*tap)(void *arg, char **buf, size_t *cap, size_t len);
	void *tap_arg;
	size_t head_len; /* set before the first chunk: the envelope before the rows */
	/* If set: called at the end of every row with the output offset of its '{' and its
	 * bytes, up to its '}'. A row whose start was flushed already is flushed whole first
	 * and passed with row NULL (read it from fd). Returns 0, or -1 (errno set) to stop the
	 * conversion as a write failure. The index's writer (sync/index.c). */
	int (*row)(void *arg, long long off, const char *row, size_t len);
	/* If set: called once the header is read, with the column list (as csv_result's
	 * columns), before any row. Returns 0, or -1 (errno set) as row does. */
	int (*header)(void *arg, const char *columns);
	void *row_arg; /* for both */
};

/* Progress hook, called about every 64 MiB of input with rows and bytes so far. */
typedef void (*csv_progress_fn)(void *arg, long long rows, long long bytes);

struct csv_opts {
	/* The longest field, counted in the CSV from its first byte to its last (quotes
	 * included), and the longest header row (its names, escaped). 0: CSV_MAX_FIELD. */
	size_t max_field;
	/* If set: checked before every read or mapped window; once non-zero the conversion stops
	 * (returns -3). A signal that sets it must interrupt a blocking read (no SA_RESTART). */
	volatile sig_atomic_t *stop;
	csv_progress_fn progress;
	void *arg;
};

/*
 * Convert the CSV read from in_fd (named name in messages) to JSON in out, stamped with
 * last_updated (ISO-8601, 20 bytes; the envelope keeps its place: see csv_last_updated_off).
 * opts may be NULL (defaults). Returns 0; -1 for bad input, with "name:line:column: what" in
 * err; -2 when writing the output failed; or -3 when opts->stop was set.
 */
int csv_convert(int in_fd, const char *name, struct csv_out *out, const char *last_updated,
                struct csv_result *res, const struct csv_opts *opts, char *err, size_t errlen);

/* For tests: parse at most n bytes at a time (the window mapped from a regular file, and the
 * size of a read from anything else), to cut the input at every place; 0 restores the
 * defaults. Process-wide: not for use while a conversion runs. */
void csv_test_chunk(size_t n);

/* Where the last_updated text starts in the output, for patching it in place. */
size_t csv_last_updated_off(void);

/* Write s as the inside of a JSON string (no quotes) to dst, which needs 6*len+1 bytes.
 * Invalid UTF-8 becomes U+FFFD. Returns the length written. */
size_t csv_json_escape(char *dst, const char *s, size_t len);

#endif
