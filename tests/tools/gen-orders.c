/*
 * gen-orders: deterministic Shopify-like orders for the demo, the tests and the benchmarks.
 *
 *   gen-orders [-n ROWS] [-s SEED] [--crlf] csv   phpMyAdmin 5.2 CSV export dialect
 *   gen-orders [-n ROWS] [-s SEED] sql            CREATE TABLE orders + INSERTs (MariaDB)
 *
 * The data holds what breaks naive tools: quotes and commas, LF, CRLF and bare CR, TAB,
 * backslash, emoji, CJK, RTL text, the string 'NULL', the empty string and SQL NULL.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCOLS 16

static const char *const cols[NCOLS] = {"id",
                                        "order_number",
                                        "email",
                                        "customer_name",
                                        "phone",
                                        "created_at",
                                        "updated_at",
                                        "total_price",
                                        "currency",
                                        "financial_status",
                                        "fulfillment_status",
                                        "shipping_address",
                                        "tags",
                                        "note",
                                        "line_items",
                                        "cancelled_at"};

static const char *const coltypes[NCOLS] = {"BIGINT UNSIGNED NOT NULL PRIMARY KEY",
                                            "VARCHAR(32) NOT NULL",
                                            "VARCHAR(255) NOT NULL",
                                            "VARCHAR(255) NOT NULL",
                                            "VARCHAR(32) NULL",
                                            "DATETIME NOT NULL",
                                            "DATETIME NOT NULL",
                                            "DECIMAL(12,2) NOT NULL",
                                            "CHAR(3) NOT NULL",
                                            "VARCHAR(32) NOT NULL",
                                            "VARCHAR(32) NULL",
                                            "TEXT NOT NULL",
                                            "TEXT NOT NULL",
                                            "TEXT NULL",
                                            "MEDIUMTEXT NOT NULL",
                                            "DATETIME NULL"};

static const char *const first[] = {"Olivia", "Liam",      "Emma",  "Noah",  "Ava",     "Mateo",
                                    "Sofía",  "Chloé",     "Zoë",   "Björn", "Aiko",    "Wei",
                                    "Fatima", "Oluwaseun", "Priya", "Jörg",  "Siobhán", "Dmitri"};
static const char *const last[] = {
    "Smith",  "García", "Müller", "O'Brien", "Nguyen",    "Kowalski",  "Rossi", "Tanaka",
    "Haddad", "Okafor", "Dubois", "Ivanova", "Johansson", "Fernández", "Kim",   "Schmidt"};
static const char *const cities[] = {"Berlin", "São Paulo", "Zürich", "Montréal",  "Toronto",
                                     "Lagos",  "Osaka",     "Kraków", "Reykjavík", "Austin"};
static const char *const products[] = {"Organic Cotton T-Shirt",
                                       "Ceramic Mug 12oz",
                                       "Leather Wallet",
                                       "Bamboo Toothbrush (4-pack)",
                                       "Wool Beanie",
                                       "Stainless Bottle 750ml",
                                       "Linen Apron",
                                       "Scented Candle \"Forest\"",
                                       "Yoga Mat, 6mm",
                                       "Gift Card"};
static const char *const statuses[] = {"paid", "pending", "refunded", "partially_refunded",
                                       "authorized"};
static const char *const tagsets[] = {"vip, repeat",    "wholesale",  "",
                                      "gift, priority", "newsletter", "b2b, net30"};
static const char *const notes[] = {
    "He said \"leave it at the door\", then hung up",
    "line one\nline two",
    "windows line\r\nsecond line",
    "tab\there, backslash \\ and \\N and \\\\",
    "\xf0\x9f\x8e\x89\xf0\x9f\x9a\x80 birthday gift \xf0\x9f\x8e\x81",
    "\xe8\xab\x8b\xe5\x9c\xa8\xe9\x80\xb1\xe6\x9c\xab\xe9\x80\x81\xe9\x81\x94",
    "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\xa2\xd7\x95\xd7\x9c\xd7\x9d "
    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
    "NULL",
    "",
    NULL,
    "'single quotes'; DROP TABLE orders; --",
    "trailing space ",
    "bare\rcarriage return",
    "Please gift wrap",
    "Call before delivery",
    ",,,\"\"\",,,",
};

static uint64_t rng;

static uint32_t rnd(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(rng >> 33);
}

#define PICK(a) (a[rnd() % (sizeof(a) / sizeof(a[0]))])

struct row {
	char *v[NCOLS]; /* NULL means SQL NULL */
};

static char bufs[NCOLS][2048];

static void make_row(unsigned long i, struct row *r)
{
	const char *fn = PICK(first), *ln = PICK(last);
	unsigned long t = 1700000000UL + i * 97UL;
	int nitems = 2 + (int)(rnd() % 3), k, n;
	double total = 0;

	for (k = 0; k < NCOLS; k++)
		r->v[k] = bufs[k];
	snprintf(bufs[0], 2048, "%lu", 5000000000UL + i);
	snprintf(bufs[1], 2048, "#%lu", 1001 + i);
	snprintf(bufs[2], 2048, "%c%s.%lu@example.com", fn[0] | 0x20, ln, i);
	snprintf(bufs[3], 2048, "%s %s", fn, ln);
	if (i % 5 == 0)
		r->v[4] = NULL;
	else
		snprintf(bufs[4], 2048, "+1-555-%04lu", i % 10000);
	{
		time_t tt = (time_t)t;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(bufs[5], 2048, "%Y-%m-%d %H:%M:%S", &tm);
		tt += 3600;
		gmtime_r(&tt, &tm);
		strftime(bufs[6], 2048, "%Y-%m-%d %H:%M:%S", &tm);
	}
	n = snprintf(bufs[14], 2048, "[");
	for (k = 0; k < nitems; k++) {
		unsigned q = 1 + rnd() % 4, cents = 499 + rnd() % 9500;
		const char *title = products[(i + (unsigned long)k) % 10];
		char esc[128];
		size_t a, b = 0;
		for (a = 0; title[a] && b < sizeof(esc) - 3; a++) {
			if (title[a] == '"')
				esc[b++] = '\\';
			esc[b++] = title[a];
		}
		esc[b] = '\0';
		total += q * cents / 100.0;
		n += snprintf(bufs[14] + n, (size_t)(2048 - n),
		              "%s{\"sku\":\"SKU-%05u\",\"title\":\"%s\",\"quantity\":%u,"
		              "\"price\":\"%u.%02u\"}",
		              k ? "," : "", rnd() % 100000, esc, q, cents / 100, cents % 100);
	}
	snprintf(bufs[14] + n, (size_t)(2048 - n), "]");
	snprintf(bufs[7], 2048, "%.2f", total);
	snprintf(bufs[8], 2048, "%s", i % 7 == 0 ? "EUR" : "USD");
	snprintf(bufs[9], 2048, "%s", PICK(statuses));
	if (i % 4 == 0)
		r->v[10] = NULL;
	else
		snprintf(bufs[10], 2048, "%s", i % 4 == 1 ? "fulfilled" : "partial");
	snprintf(bufs[11], 2048, "%u %s Street, Apt %u\n%s, %05u", 1 + rnd() % 999, ln, rnd() % 90,
	         PICK(cities), rnd() % 99999);
	snprintf(bufs[12], 2048, "%s", PICK(tagsets));
	{
		const char *nt = notes[i % (sizeof(notes) / sizeof(notes[0]))];
		if (nt == NULL)
			r->v[13] = NULL;
		else
			snprintf(bufs[13], 2048, "%s", nt);
	}
	if (i % 11 == 3)
		snprintf(bufs[15], 2048, "%s", bufs[6]);
	else
		r->v[15] = NULL;
}

static void csv_value(const char *s)
{
	if (s == NULL) {
		fputs("NULL", stdout);
		return;
	}
	if (*s == '\0')
		return;
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

static void sql_value(const char *s)
{
	if (s == NULL) {
		fputs("NULL", stdout);
		return;
	}
	putchar('\'');
	for (; *s; s++) {
		switch (*s) {
		case '\'':
			fputs("''", stdout);
			break;
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\0':
			fputs("\\0", stdout);
			break;
		default:
			putchar(*s);
		}
	}
	putchar('\'');
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"crlf", no_argument, NULL, 'r'}, {NULL, 0, NULL, 0}};
	unsigned long rows = 1000, i;
	const char *eol = "\n";
	struct row r;
	int ch, k;

	rng = 42;
	while ((ch = getopt_long(argc, argv, "n:s:", lo, NULL)) != -1) {
		if (ch == 'n')
			rows = strtoul(optarg, NULL, 10);
		else if (ch == 's')
			rng = strtoull(optarg, NULL, 10);
		else if (ch == 'r')
			eol = "\r\n";
		else
			return 2;
	}
	if (optind + 1 != argc || (strcmp(argv[optind], "csv") && strcmp(argv[optind], "sql"))) {
		fprintf(stderr, "usage: gen-orders [-n ROWS] [-s SEED] [--crlf] csv|sql\n");
		return 2;
	}
	if (strcmp(argv[optind], "csv") == 0) {
		for (k = 0; k < NCOLS; k++) {
			if (k)
				putchar(',');
			csv_value(cols[k]);
		}
		fputs(eol, stdout);
		for (i = 0; i < rows; i++) {
			make_row(i, &r);
			for (k = 0; k < NCOLS; k++) {
				if (k)
					putchar(',');
				csv_value(r.v[k]);
			}
			fputs(eol, stdout);
		}
		return ferror(stdout) ? 1 : 0;
	}
	printf("SET NAMES utf8mb4;\nDROP TABLE IF EXISTS orders;\nCREATE TABLE orders (\n");
	for (k = 0; k < NCOLS; k++)
		printf("  `%s` %s%s\n", cols[k], coltypes[k], k + 1 < NCOLS ? "," : "");
	printf(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;\n");
	for (i = 0; i < rows; i++) {
		make_row(i, &r);
		if (i % 500 == 0)
			printf("%sINSERT INTO orders VALUES\n", i ? ";\n" : "");
		else
			printf(",\n");
		putchar('(');
		for (k = 0; k < NCOLS; k++) {
			if (k)
				putchar(',');
			sql_value(r.v[k]);
		}
		putchar(')');
	}
	printf("%s", rows ? ";\n" : "");
	return ferror(stdout) ? 1 : 0;
}
