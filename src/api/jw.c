/* A small JSON writer.  The library writes every request text itself: the
 * output is compact and in a fixed field order (what the guest's Go decoder
 * accepts, and what a reader of a trace expects), and it costs one growing
 * buffer instead of a json-c object per field.  Errors are sticky, so
 * callers write a whole document and check once in hcsb__jw_finish(). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"

#define JW_MAX_DEPTH 32u

void hcsb__jw_init(hcsb__jw_t *w) {
  memset(w, 0, sizeof(*w));
}

void hcsb__jw_free(hcsb__jw_t *w) {
  hcsb__buf_free(&w->buf);
}

static void put(hcsb__jw_t *w, const char *s, size_t n) {
  if (w->err == 0 && hcsb__buf_append(&w->buf, s, n) != 0) w->err = -ENOMEM;
}

/* Writes the comma a value needs, unless it follows its key. */
static void sep(hcsb__jw_t *w) {
  uint32_t bit;

  if (w->after_key) {
    w->after_key = 0;
    return;
  }
  if (w->depth == 0) return;
  bit = 1u << (w->depth - 1);
  if (w->nonempty & bit) put(w, ",", 1);
  w->nonempty |= bit;
}

static void open_(hcsb__jw_t *w, const char *c) {
  sep(w);
  put(w, c, 1);
  if (w->depth >= JW_MAX_DEPTH) {
    w->err = -EINVAL;
    return;
  }
  w->depth++;
  w->nonempty &= ~(1u << (w->depth - 1));
}

static void close_(hcsb__jw_t *w, const char *c) {
  if (w->depth == 0) {
    w->err = -EINVAL;
    return;
  }
  w->depth--;
  put(w, c, 1);
}

void hcsb__jw_obj(hcsb__jw_t *w) {
  open_(w, "{");
}
void hcsb__jw_obj_end(hcsb__jw_t *w) {
  close_(w, "}");
}
void hcsb__jw_arr(hcsb__jw_t *w) {
  open_(w, "[");
}
void hcsb__jw_arr_end(hcsb__jw_t *w) {
  close_(w, "]");
}

void hcsb__jw_strn(hcsb__jw_t *w, const char *s, size_t n) {
  sep(w);
  if (w->err == 0 && hcsb__json_put_string(&w->buf, s, n) != 0)
    w->err = -ENOMEM;
}

void hcsb__jw_str(hcsb__jw_t *w, const char *s) {
  hcsb__jw_strn(w, s, strlen(s));
}

void hcsb__jw_keyn(hcsb__jw_t *w, const char *key, size_t n) {
  hcsb__jw_strn(w, key, n);
  put(w, ":", 1);
  w->after_key = 1;
}

void hcsb__jw_key(hcsb__jw_t *w, const char *key) {
  hcsb__jw_keyn(w, key, strlen(key));
}

void hcsb__jw_u64(hcsb__jw_t *w, uint64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);

  sep(w);
  put(w, tmp, (size_t)n);
}

void hcsb__jw_bool(hcsb__jw_t *w, int v) {
  sep(w);
  if (v)
    put(w, "true", 4);
  else
    put(w, "false", 5);
}

void hcsb__jw_raw(hcsb__jw_t *w, const char *text, size_t len) {
  sep(w);
  put(w, text, len);
}

void hcsb__jw_kstr(hcsb__jw_t *w, const char *key, const char *s) {
  if (s == NULL || s[0] == '\0') return;
  hcsb__jw_key(w, key);
  hcsb__jw_str(w, s);
}

void hcsb__jw_ku64(hcsb__jw_t *w, const char *key, uint64_t v) {
  if (v == 0) return;
  hcsb__jw_key(w, key);
  hcsb__jw_u64(w, v);
}

void hcsb__jw_kbool(hcsb__jw_t *w, const char *key, int v) {
  if (!v) return;
  hcsb__jw_key(w, key);
  hcsb__jw_bool(w, 1);
}

int hcsb__jw_finish(hcsb__jw_t *w, char **out) {
  *out = NULL;
  if (w->err == 0 && w->depth != 0) w->err = -EINVAL;
  put(w, "", 1); /* the terminating NUL */
  if (w->err != 0) {
    hcsb__jw_free(w);
    return w->err;
  }
  *out = w->buf.data;
  w->buf.data = NULL;
  w->buf.len = w->buf.cap = 0;
  return 0;
}
