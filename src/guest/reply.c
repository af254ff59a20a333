/* Response and notification bodies, written the way the Linux GCS's Go
 * encoder writes them: compact, fields in struct order, omitempty honoured,
 * HRESULTs as signed int32, invalid UTF-8 replaced by U+FFFD.  A small
 * writer of our own (rather than json-c's serialiser) is what makes the
 * bytes match the recorded sessions. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

void hcsb__gjw_init(hcsb__gjw_t *w) {
  memset(w, 0, sizeof *w);
}

void hcsb__gjw_free(hcsb__gjw_t *w) {
  hcsb__buf_free(&w->b);
}

static void put(hcsb__gjw_t *w, const char *s, size_t n) {
  if (!w->err && hcsb__buf_append(&w->b, s, n) != 0) w->err = 1;
}

/* Separator and key for the next member or element. */
static void member(hcsb__gjw_t *w, const char *key) {
  if (w->depth > 0) {
    if (!w->first[w->depth - 1]) put(w, ",", 1);
    w->first[w->depth - 1] = 0;
  }
  if (key != NULL) {
    if (!w->err && hcsb__json_put_string(&w->b, key, strlen(key)) != 0)
      w->err = 1;
    put(w, ":", 1);
  }
}

static void open_container(hcsb__gjw_t *w, const char *key, char c) {
  member(w, key);
  put(w, &c, 1);
  if (w->depth == sizeof w->first) {
    w->err = 1; /* our own bodies never nest this deep */
    return;
  }
  w->first[w->depth++] = 1;
}

void hcsb__gjw_obj(hcsb__gjw_t *w, const char *key) {
  open_container(w, key, '{');
}

void hcsb__gjw_arr(hcsb__gjw_t *w, const char *key) {
  open_container(w, key, '[');
}

void hcsb__gjw_end(hcsb__gjw_t *w, char close) {
  if (w->depth > 0) w->depth--;
  put(w, &close, 1);
}

void hcsb__gjw_str(hcsb__gjw_t *w, const char *key, const char *s, size_t n) {
  size_t start, extra = 0, i, j;
  char *p;

  member(w, key);
  start = w->b.len;
  if (w->err || hcsb__json_put_string(&w->b, s, n) != 0) {
    w->err = 1;
    return;
  }
  /* Go's encoder also escapes <, > and & (as \u003c, \u003e, \u0026).
   * These bytes never occur inside an escape sequence, so expanding them
   * in the encoded text is safe. */
  for (i = start; i < w->b.len; i++)
    if (w->b.data[i] == '<' || w->b.data[i] == '>' || w->b.data[i] == '&')
      extra += 5;
  if (extra == 0) return;
  if (hcsb__buf_reserve(&w->b, extra) != 0) {
    w->err = 1;
    return;
  }
  p = w->b.data;
  for (i = w->b.len, j = w->b.len + extra; i > start;) {
    char ch = p[--i];
    if (ch == '<' || ch == '>' || ch == '&') {
      j -= 6;
      memcpy(p + j,
             ch == '<'   ? "\\u003c"
             : ch == '>' ? "\\u003e"
                         : "\\u0026",
             6);
    } else {
      p[--j] = ch;
    }
  }
  w->b.len += extra;
}

void hcsb__gjw_cstr(hcsb__gjw_t *w, const char *key, const char *s) {
  hcsb__gjw_str(w, key, s, strlen(s));
}

void hcsb__gjw_i64(hcsb__gjw_t *w, const char *key, int64_t v) {
  char num[24];
  int n = snprintf(num, sizeof num, "%" PRId64, v);
  member(w, key);
  put(w, num, (size_t)n);
}

void hcsb__gjw_u64(hcsb__gjw_t *w, const char *key, uint64_t v) {
  char num[24];
  int n = snprintf(num, sizeof num, "%" PRIu64, v);
  member(w, key);
  put(w, num, (size_t)n);
}

void hcsb__gjw_bool(hcsb__gjw_t *w, const char *key, int v) {
  member(w, key);
  put(w, v ? "true" : "false", v ? 4 : 5);
}

void hcsb__gjw_raw(hcsb__gjw_t *w, const char *key, const char *json) {
  member(w, key);
  put(w, json, strlen(json));
}

/* ------------------------------------------------------------------------ */

void hcsb__greply_begin(hcsb__gjw_t *w, uint32_t hr, const char *aid) {
  hcsb__gjw_init(w);
  hcsb__gjw_obj(w, NULL);
  hcsb__gjw_i64(w, "Result", (int32_t)hr);
  /* MessageResponseBase.ActivityID is `omitempty`. */
  if (aid != NULL && aid[0] != '\0') hcsb__gjw_cstr(w, "ActivityId", aid);
}

void hcsb__greply_finish(hcsb__guest_t *g, const hcsb__gcall_t *call,
                         hcsb__gjw_t *w) {
  uint32_t type = 0x20000000u | (call->type & 0x0FFFFFFFu);

  hcsb__gjw_end(w, '}');
  if (w->err) {
    /* Out of memory while building a body: a minimal answer still lets the
     * host's call complete. */
    char body[64];
    int n = snprintf(body, sizeof body, "{\"Result\":%" PRId32 "}",
                     (int32_t)HCSB__G_E_OUTOFMEMORY);
    hcsb__glog(g, 0, "out of memory building a response (id %" PRIu64 ")",
               call->id);
    hcsb__gconn_send(g, type, call->id, body, (size_t)n);
  } else {
    hcsb__gconn_send(g, type, call->id, w->b.data, w->b.len);
  }
  hcsb__gjw_free(w);
}

void hcsb__greply_ok(hcsb__guest_t *g, const hcsb__gcall_t *call) {
  hcsb__gjw_t w;

  hcsb__greply_begin(&w, 0, call->aid);
  hcsb__greply_finish(g, call, &w);
}

void hcsb__greply_err(hcsb__guest_t *g, const hcsb__gcall_t *call, uint32_t hr,
                      const char *msg) {
  char plain[32];
  hcsb__gjw_t w;

  if (msg == NULL) {
    /* gcserr.NewHresultError's text. */
    snprintf(plain, sizeof plain, "HRESULT: 0x%08" PRIx32, hr);
    msg = plain;
  }
  hcsb__greply_begin(&w, hr, call->aid);
  hcsb__gjw_cstr(&w, "ErrorMessage", msg);
  hcsb__gjw_arr(&w, "ErrorRecords");
  hcsb__gjw_obj(&w, NULL);
  hcsb__gjw_i64(&w, "Result", (int32_t)hr);
  hcsb__gjw_cstr(&w, "Message", msg);
  hcsb__gjw_cstr(&w, "ModuleName", "gcs");
  /* Without a Go stack the record's file is "" and its line -1 (uint32). */
  hcsb__gjw_cstr(&w, "FileName", "");
  hcsb__gjw_u64(&w, "Line", 4294967295u);
  hcsb__gjw_end(&w, '}');
  hcsb__gjw_end(&w, ']');
  hcsb__greply_finish(g, call, &w);
}

void hcsb__greply_errf(hcsb__guest_t *g, const hcsb__gcall_t *call, uint32_t hr,
                       const char *fmt, ...) {
  va_list ap;
  char *msg = NULL;
  int n;

  va_start(ap, fmt);
  n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  hcsb__greply_err(g, call, hr, n < 0 ? "out of memory" : msg);
  if (n >= 0) free(msg);
}

void hcsb__greply_notify(hcsb__guest_t *g, const char *cid, const char *aid,
                         const char *type) {
  hcsb__gjw_t w;

  /* ContainerNotification: MessageBase (no omitempty), Type, Operation,
   * Result; ResultInfo is omitempty and the Linux GCS leaves it empty. */
  hcsb__gjw_init(&w);
  hcsb__gjw_obj(&w, NULL);
  hcsb__gjw_cstr(&w, "ContainerId", cid);
  hcsb__gjw_cstr(&w, "ActivityId", aid != NULL ? aid : "");
  hcsb__gjw_cstr(&w, "Type", type);
  hcsb__gjw_cstr(&w, "Operation", "None");
  hcsb__gjw_i64(&w, "Result", 0);
  hcsb__gjw_end(&w, '}');
  if (!w.err)
    hcsb__gconn_send(g, 0x30100101u, 0, w.b.data, w.b.len);
  else
    hcsb__glog(g, 0, "out of memory: notification for %s lost", cid);
  hcsb__gjw_free(&w);
}

int hcsb__gcall_copy(hcsb__gcall_t *dst, const hcsb__gcall_t *src) {
  dst->type = src->type;
  dst->id = src->id;
  dst->aid = NULL;
  if (src->aid != NULL) {
    dst->aid = strndup(src->aid, HCSB__G_MAX_AID);
    if (dst->aid == NULL) return -ENOMEM;
  }
  return 0;
}

void hcsb__gcall_free(hcsb__gcall_t *c) {
  free(c->aid);
  c->aid = NULL;
}
