#include "t.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int t_pass, t_fail;

static char t_dir[64];

const char *t_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	if (t_dir[0] == '\0') {
		snprintf(t_dir, sizeof(t_dir), "/tmp/pmacache-unit.XXXXXX");
		if (mkdtemp(t_dir) == NULL) {
			perror("mkdtemp");
			exit(2);
		}
	}
	snprintf(path, sizeof(path), "%s/%s", t_dir, name);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	/* Key and password files must be 0600 or 0640: every test file is. */
	chmod(path, 0600);
	return path;
}

int main(void)
{
	char cmd[128];

	test_conf();
	test_auth();
	test_auth_hostile();
	test_limit();
	test_escape();
	test_csv();
	test_csv_flush_mark();
	test_req();
	test_req_long();
	test_query();
	test_cache();
	test_cache_beneath();
	test_gz();
	test_snap();
	test_snapidx();
	test_index();
	test_wd();
	test_status();
	test_stream();
	if (t_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", t_dir);
	}
	printf("unit: %d passed, %d failed\n", t_pass, t_fail);
	return t_fail ? 1 : 0;
}
