/* conf-keys: print every key the config parser knows, one a line (for test_dropin.sh). */
#include "../../common/conf.h"

#include <stdio.h>

int main(void)
{
	const char *k;
	size_t i;

	for (i = 0; (k = conf_key_name(i)) != NULL; i++)
		puts(k);
	return i == 0;
}
