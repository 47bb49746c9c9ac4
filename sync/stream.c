#include "stream.h"

#include "../common/log.h"
#include "sync.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* The limits of the transfer. */
#define STREAM_PIPE_SIZE (1024 * 1024) /* the pipe's buffer: the body runs ahead of the reader */
#define STREAM_CONNECT_MS 30000        /* connecting to phpMyAdmin */
#define STREAM_WAIT_MS 100             /* the start's wait polls stop this often */
#define STREAM_SNIPPET 2048            /* the start of a failed answer, kept for the message */

struct stream {
	CURL *curl;
	pthread_t thread;
	int thread_on;
	int rfd, wfd; /* the pipe */
	char url[2048];
	char *cookie; /* wiped and freed once the transfer ended */
	volatile sig_atomic_t *stop;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started; /* the first body byte of a good answer went into the pipe */
	int done;    /* the transfer ended; the fields below are final */

	/* Written by the thread; read by others once done (or started, for the first three). */
	long status;
	char reason[128]; /* the status line's words: "Internal Server Error" */
	char ctype[128];  /* Content-Type */
	int checked;      /* the answer's status and type were looked at */
	int bad;          /* ... and it is not a CSV export: its start goes to snippet */
	int chunked;      /* Transfer-Encoding: chunked */
	char snippet[STREAM_SNIPPET + 1];
	size_t snippet_len;
	long long bytes; /* body bytes received */
	char last;       /* the body's last byte */
	int reader_gone; /* the reader closed its end: it stopped reading */
	CURLcode cc;
	char cerr[CURL_ERROR_SIZE];
};

static int stopping(const struct stream *s)
{
	return s->stop ? *s->stop : 0;
}

/* The status line's words and the headers the verdict needs. */
static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t len = size * n;
	int code;
	char words[128];

	if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		s->chunked = 0; /* a new answer (after a 100 Continue) */
		words[0] = '\0';
		if (sscanf(buf, "HTTP/%*s %d %127[^\r\n]", &code, words) >= 1) {
			s->status = code; /* an answer started */
			snprintf(s->reason, sizeof(s->reason), "%s", words);
		}
	} else if (len > 18 && strncasecmp(buf, "transfer-encoding:", 18) == 0) {
		char v[64];
		snprintf(v, sizeof(v), "%.*s", (int)(len - 18), buf + 18);
		if (strstr(v, "chunked") || strstr(v, "CHUNKED"))
			s->chunked = 1;
	}
	return len;
}

/* A good answer: 200 with anything but an HTML page (the converter judges the CSV). */
static void check_answer(struct stream *s)
{
	char *ct = NULL;

	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
	curl_easy_getinfo(s->curl, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(s->ctype, sizeof(s->ctype), "%s", ct ? ct : "");
	s->bad = s->status != 200 || strncasecmp(s->ctype, "text/html", 9) == 0 ||
	         strncasecmp(s->ctype, "application/xhtml", 17) == 0 ||
	         strncasecmp(s->ctype, "application/json", 16) == 0;
	s->checked = 1;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t len = size * n, off = 0;

	if (!s->checked)
		check_answer(s);
	if (s->bad) { /* keep its start for the message, then end the transfer */
		size_t take = STREAM_SNIPPET - s->snippet_len;
		if (take > len)
			take = len;
		memcpy(s->snippet + s->snippet_len, buf, take);
		s->snippet_len += take;
		s->snippet[s->snippet_len] = '\0';
		return s->snippet_len < STREAM_SNIPPET ? len : 0;
	}
	if (len == 0)
		return 0;
	while (off < len) {
		ssize_t w = write(s->wfd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) { /* EPIPE: the reader stopped reading */
			s->reader_gone = 1;
			return 0;
		}
		off += (size_t)w;
	}
	s->bytes += (long long)len;
	s->last = buf[len - 1];
	if (!s->started) {
		pthread_mutex_lock(&s->mu);
		s->started = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return stopping(arg) ? 1 : 0;
}

static void *run(void *arg)
{
	struct stream *s = arg;
	sigset_t all;

	/* Signals are the main thread's: its blocking read must see them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	s->cc = curl_easy_perform(s->curl);
	if (!s->checked && s->cc == CURLE_OK)
		check_answer(s); /* an empty body */
	if (s->cookie) {
		explicit_bzero(s->cookie, strlen(s->cookie));
		curl_easy_setopt(s->curl, CURLOPT_COOKIE, NULL);
	}
	close(s->wfd); /* the reader sees the end */
	s->wfd = -1;
	pthread_mutex_lock(&s->mu);
	s->done = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* The snippet as one line of text: tags and runs of blanks become one space. */
static void snippet_text(const char *in, char *out, size_t len)
{
	size_t o = 0;
	int tag = 0, blank = 1;

	for (; *in && o + 1 < len; in++) {
		unsigned char c = (unsigned char)*in;
		if (c == '<')
			tag = 1;
		if (tag) {
			if (c == '>')
				tag = 0;
			c = ' ';
		}
		if (c < ' ' || c == ' ') {
			if (blank)
				continue;
			c = ' ';
			blank = 1;
		} else {
			blank = 0;
		}
		out[o++] = (char)c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* What became of the transfer, once done. */
static int verdict(struct stream *s, char *err, size_t errlen)
{
	char text[300];

	if (stopping(s)) {
		snprintf(err, errlen, "the export download: %s after %lld bytes",
		         *s->stop == 1 ? "sync_timeout passed" : "stopped by a signal", s->bytes);
		return SC_OF_STOP(*s->stop);
	}
	if (s->reader_gone) {
		snprintf(err, errlen,
		         "the export download: the converter stopped reading after "
		         "%lld bytes",
		         s->bytes);
		return -1;
	}
	if (s->bad) {
		snippet_text(s->snippet, text, sizeof(text));
		if (strstr(s->snippet, "input_username") || strstr(s->snippet, "login_form")) {
			snprintf(err, errlen, "the export asked for a login again (HTTP %ld, %s)",
			         s->status, s->ctype[0] ? s->ctype : "no Content-Type");
			return SC_LOGIN;
		}
		if (s->status >= 500) {
			snprintf(err, errlen,
			         "the export: phpMyAdmin is failing: HTTP %ld %s from %s (%.200s)",
			         s->status, s->reason, s->url, text);
			return SC_PMA;
		}
		if (s->status != 200) {
			snprintf(err, errlen, "the export failed: HTTP %ld %s from %s (%.200s)",
			         s->status, s->reason, s->url, text);
			return SC_EXPORT;
		}
		snprintf(err, errlen,
		         "the export answered %s instead of CSV: is this phpMyAdmin's export? "
		         "(%.200s)",
		         s->ctype, text);
		return SC_INVALID;
	}
	switch (s->cc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		if (s->bytes == 0 && s->status == 0) {
			snprintf(err, errlen, "the export: phpMyAdmin unreachable at %s: %s",
			         s->url, s->cerr[0] ? s->cerr : curl_easy_strerror(s->cc));
			return SC_UNREACHABLE;
		}
		/* It was answering: a cut. */
		__attribute__((fallthrough));
	default:
		if (s->status > 0 || s->bytes > 0) { /* the answer had begun */
			snprintf(err, errlen,
			         "the export download was cut off after %lld bytes (%s%s)",
			         s->bytes, s->chunked ? "chunked, " : "",
			         s->cerr[0] ? s->cerr : curl_easy_strerror(s->cc));
			return SC_CUT;
		}
		snprintf(err, errlen, "the export: no answer from %s: %s", s->url,
		         s->cerr[0] ? s->cerr : curl_easy_strerror(s->cc));
		return SC_UNREACHABLE;
	}
	/* phpMyAdmin ends every CSV row, the last one too, with a line end: a body that does
	 * not was cut where HTTP could not tell (an answer ended by closing the connection). */
	if (s->bytes > 0 && s->last != '\n') {
		snprintf(err, errlen,
		         "the export ends without a line end, after %lld bytes (is the export "
		         "truncated?%s)",
		         s->bytes, s->chunked ? "" : " its answer had no length and no chunks");
		return SC_INVALID;
	}
	return SC_OK;
}

static void wait_done(struct stream *s)
{
	if (s->thread_on) {
		pthread_join(s->thread, NULL);
		s->thread_on = 0;
	}
}

static void stream_free(struct stream *s)
{
	wait_done(s);
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->wfd >= 0)
		close(s->wfd);
	if (s->curl)
		curl_easy_cleanup(s->curl);
	if (s->cookie) {
		explicit_bzero(s->cookie, strlen(s->cookie));
		free(s->cookie);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

int stream_fd(const struct stream *s)
{
	return s->rfd;
}

int stream_start(const struct stream_req *r, struct stream **out, char *err, size_t errlen)
{
	struct stream *s = calloc(1, sizeof(*s));
	int fds[2], code;
	struct timespec until;

	*out = NULL;
	if (s == NULL) {
		snprintf(err, errlen, "the export download: out of memory");
		return SC_WRITE;
	}
	s->rfd = s->wfd = -1;
	s->stop = r->stop;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	snprintf(s->url, sizeof(s->url), "%s", r->url);
	if (strncmp(r->url, "http://", 7) != 0 && strncmp(r->url, "https://", 8) != 0) {
		snprintf(err, errlen, "the export: %s is not an http:// or https:// URL", r->url);
		stream_free(s);
		return SC_CONFIG;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "the export download: pipe: %s", strerror(errno));
		stream_free(s);
		return SC_WRITE;
	}
	s->rfd = fds[0];
	s->wfd = fds[1];
	fcntl(s->wfd, F_SETPIPE_SZ, STREAM_PIPE_SIZE); /* a smaller pipe works too */
	if ((s->curl = curl_easy_init()) == NULL ||
	    (r->cookie && (s->cookie = strdup(r->cookie)) == NULL)) {
		snprintf(err, errlen, "the export download: out of memory");
		stream_free(s);
		return SC_WRITE;
	}
	curl_easy_setopt(s->curl, CURLOPT_URL, r->url);
	curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(s->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(s->curl, CURLOPT_FOLLOWLOCATION, 0L); /* pma_url and nothing else */
	curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)STREAM_CONNECT_MS);
	curl_easy_setopt(s->curl, CURLOPT_COPYPOSTFIELDS, r->body);
	if (s->cookie)
		curl_easy_setopt(s->curl, CURLOPT_COOKIE, s->cookie);
	if (r->user_agent && r->user_agent[0])
		curl_easy_setopt(s->curl, CURLOPT_USERAGENT, r->user_agent);
	if (r->referer && r->referer[0])
		curl_easy_setopt(s->curl, CURLOPT_REFERER, r->referer);
	curl_easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, s);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->cerr);
	curl_easy_setopt(s->curl, CURLOPT_BUFFERSIZE, 256L * 1024);
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		snprintf(err, errlen, "the export download: no thread: %s", strerror(errno));
		stream_free(s);
		return SC_WRITE;
	}
	s->thread_on = 1;

	/* Until the first byte of a good answer, or the end. */
	pthread_mutex_lock(&s->mu);
	while (!s->started && !s->done && !stopping(s)) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += STREAM_WAIT_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &until);
	}
	pthread_mutex_unlock(&s->mu);
	if (s->started || (s->done && !stopping(s) && (code = verdict(s, err, errlen)) == SC_OK)) {
		*out = s;
		return SC_OK;
	}
	/* Failed or stopped before the body: the transfer ends (the progress hook sees stop). */
	if (s->rfd >= 0) {
		close(s->rfd);
		s->rfd = -1;
	}
	wait_done(s);
	code = verdict(s, err, errlen);
	if (code <= SC_OK) { /* stopped: the verdict says so; never a success */
		snprintf(err, errlen, "the export download did not start");
		code = SC_EXPORT;
	}
	stream_free(s);
	return code;
}

int stream_verdict(struct stream *s, char *err, size_t errlen)
{
	int code;

	wait_done(s);
	code = verdict(s, err, errlen);
	return code < 0 ? SC_EXPORT : code;
}

int stream_end(struct stream *s, long long *bytes, char *err, size_t errlen)
{
	int code;

	if (bytes)
		*bytes = 0;
	if (s == NULL)
		return SC_OK;
	if (s->rfd >= 0) { /* a writer blocked on a full pipe gets EPIPE */
		close(s->rfd);
		s->rfd = -1;
	}
	wait_done(s);
	if (bytes)
		*bytes = s->bytes;
	code = verdict(s, err, errlen);
	stream_free(s);
	return code;
}
