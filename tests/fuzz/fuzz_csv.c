/* libFuzzer: the CSV converter. Whatever the input, it either fails cleanly or writes strict
 * UTF-8 JSON that parses, with no raw control character. */
#include "../../sync/csv.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], need, min, cp;
		if (c < 0x80) {
			if (c < 0x20)
				return 0; /* JSON text here never holds a raw control char */
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			need = 1, min = 0x80, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			need = 2, min = 0x800, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			need = 3, min = 0x10000, cp = c & 0x07;
		else
			return 0;
		if (i + need >= n)
			return 0;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += need + 1;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_out out = {-1, NULL, 0, NULL, NULL, 0, 0};
	struct csv_result res;
	char err[512];
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	lseek(fd, 0, SEEK_SET);
	if (csv_convert(fd, "fuzz.csv", &out, "2026-01-01T00:00:00Z", &res, NULL, err,
			sizeof(err)) == 0) {
		struct json_object *o = json_tokener_parse(out.mem);
		if (o == NULL || !utf8_ok((const unsigned char *)out.mem, out.mem_len))
			abort();
		json_object_put(o);
		free(res.columns);
	} else if (strncmp(err, "fuzz.csv:", 9) != 0) {
		abort(); /* every refusal names file:line:column */
	}
	free(out.mem);
	close(fd);
	return 0;
}
