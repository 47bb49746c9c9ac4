#include "pma.h"

#include "sync.h"

#include <stdio.h>

int pma_export(const struct conf *c, char *csv_path, size_t pathlen, char *err, size_t errlen)
{
	(void)c;
	(void)csv_path;
	(void)pathlen;
	snprintf(err, errlen, "the browser sync is not built in yet");
	return EXIT_CONFIG;
}
