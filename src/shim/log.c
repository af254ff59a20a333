/* The shim's log (log.h): logrus-style text lines, one write(2) each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim/log.h"

/* One line is written with one write(2); a pipe keeps writes of up to
 * PIPE_BUF (4096) bytes whole, so lines from several writers never mix. */
#define LINE_MAX_BYTES 4096

static struct {
  int fd;           /* -1: stderr */
  int level;        /* an hcsb_log_level_t, or -1: nothing */
  char fields[256]; /* " id=... namespace=..." */
  unsigned long dropped;
} logger = {-1, HCSB_LOG_INFO, "", 0};

static const char *level_name(hcsb_log_level_t level) {
  switch (level) {
    case HCSB_LOG_ERROR:
      return "error";
    case HCSB_LOG_WARN:
      return "warning";
    case HCSB_LOG_INFO:
      return "info";
    case HCSB_LOG_DEBUG:
      return "debug";
    default:
      return "trace";
  }
}

/* Appends `s` to buf[*at..cap) the way logrus quotes a value (Go's %q for
 * what matters here), leaving room for the closing quote and newline. */
static void put_quoted(char *buf, size_t cap, size_t *at, const char *s) {
  static const char hex[] = "0123456789abcdef";
  size_t i = *at;

  if (cap < 3) return;
  for (; *s != '\0' && i + 6 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[i++] = '\\';
      buf[i++] = (char)c;
    } else if (c == '\n') {
      buf[i++] = '\\';
      buf[i++] = 'n';
    } else if (c == '\t') {
      buf[i++] = '\\';
      buf[i++] = 't';
    } else if (c < 0x20 || c == 0x7f) {
      buf[i++] = '\\';
      buf[i++] = 'x';
      buf[i++] = hex[c >> 4];
      buf[i++] = hex[c & 15];
    } else {
      buf[i++] = (char)c;
    }
  }
  *at = i;
}

static void set_field(char *dst, size_t cap, size_t *at, const char *key,
                      const char *val) {
  size_t i = *at;
  int n;

  if (val == NULL || *val == '\0') return;
  n = snprintf(dst + i, cap - i, " %s=\"", key);
  if (n < 0 || (size_t)n >= cap - i) return;
  i += (size_t)n;
  put_quoted(dst, cap - 2, &i, val);
  dst[i++] = '"';
  dst[i] = '\0';
  *at = i;
}

void hcsb__shim_log_open(int fd, const char *id, const char *ns) {
  size_t at = 0;

  hcsb__shim_log_close();
  logger.fd = fd;
  logger.fields[0] = '\0';
  set_field(logger.fields, sizeof(logger.fields), &at, "id", id);
  set_field(logger.fields, sizeof(logger.fields), &at, "namespace", ns);
}

void hcsb__shim_log_close(void) {
  if (logger.fd >= 0) close(logger.fd);
  logger.fd = -1;
}

void hcsb__shim_log_set_level(hcsb_log_level_t level) {
  logger.level = (int)level;
}

void hcsb__shim_log_silence(void) {
  logger.level = -1;
}

hcsb_log_level_t hcsb__shim_log_level(void) {
  return logger.level < 0 ? HCSB_LOG_ERROR : (hcsb_log_level_t)logger.level;
}

int hcsb__shim_log_enabled(hcsb_log_level_t level) {
  return (int)level <= logger.level;
}

unsigned long hcsb__shim_log_dropped(void) {
  return logger.dropped;
}

static void emit(hcsb_log_level_t level, const char *msg, const char *extra) {
  char line[LINE_MAX_BYTES];
  struct timespec ts;
  struct tm tm;
  size_t at;
  int n, fd = logger.fd >= 0 ? logger.fd : STDERR_FILENO;
  ssize_t w;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = snprintf(line, sizeof(line),
               "time=\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\" level=%s msg=\"",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, (long)ts.tv_nsec, level_name(level));
  if (n < 0) return;
  at = (size_t)n;
  /* Keep room for the fields and the line's end. */
  put_quoted(line, sizeof(line) - sizeof(logger.fields) - 128, &at, msg);
  line[at++] = '"';
  if (extra != NULL) {
    size_t rest = sizeof(line) - at - sizeof(logger.fields) - 2;
    n = snprintf(line + at, rest, "%s", extra);
    if (n > 0) at += (size_t)n < rest ? (size_t)n : rest - 1;
  }
  n = snprintf(line + at, sizeof(line) - at, "%s\n", logger.fields);
  if (n > 0) at += (size_t)n < sizeof(line) - at ? (size_t)n : 0;
  do {
    w = write(fd, line, at);
  } while (w < 0 && errno == EINTR);
  if (w < 0) logger.dropped++;
}

void hcsb__shim_vlog(hcsb_log_level_t level, const char *fmt, va_list ap) {
  char msg[LINE_MAX_BYTES];

  if (!hcsb__shim_log_enabled(level)) return;
  vsnprintf(msg, sizeof(msg), fmt, ap);
  emit(level, msg, NULL);
}

void hcsb__shim_log(hcsb_log_level_t level, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  hcsb__shim_vlog(level, fmt, ap);
  va_end(ap);
}

void hcsb__shim_lib_log(void *data, hcsb_log_level_t level,
                        const char *activity_id, const char *msg) {
  char extra[128];
  size_t at = 0;

  (void)data;
  if (level > HCSB_LOG_TRACE) level = HCSB_LOG_TRACE;
  if (!hcsb__shim_log_enabled(level)) return;
  extra[0] = '\0';
  set_field(extra, sizeof(extra), &at, "activity", activity_id);
  emit(level, msg, extra);
}
