/* Logging through the embedder's callback, and frame tracing. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bridge/internal.h"

#define LINE_MAX_LEN 1024
#define TRACE_BODY_MAX 2048

const char *hcsb__errstr(int status) {
  const char *s = hcsb_strerror(status);
  /* hcsb_strerror knows the library's statuses; transport causes (UV_EOF,
   * -ENOENT, -EADDRINUSE, ...) are libuv's to name. */
  return strcmp(s, "unknown error") != 0 ? s : uv_strerror(status);
}

void hcsb__log(const hcsb_bridge_t *b, hcsb_log_level_t level,
               const char *activity_id, const char *fmt, ...) {
  if (!hcsb__log_on(b, level)) return;
  char line[LINE_MAX_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  b->log_cb(b->log_data, level, activity_id, line);
}

void hcsb__log_frame(const hcsb_bridge_t *b, const char *dir, uint32_t type,
                     uint64_t id, const void *body, size_t body_len) {
  if (!hcsb__log_on(b, HCSB_LOG_TRACE)) return;
  char line[TRACE_BODY_MAX + 160];
  int n = snprintf(line, sizeof line, "%s %s (0x%08X) id=%llu size=%zu: ", dir,
                   hcsb__msg_name(type), type, (unsigned long long)id,
                   body_len + HCSB__HDR_SIZE);
  if (n < 0) return;
  size_t len = (size_t)n;
  /* protocol.md §9.7: these carry the environment of the process. */
  int withheld =
      (type == HCSB_MSG_CREATE || type == HCSB_MSG_EXECUTE_PROCESS) &&
      b->log_level < HCSB_LOG_TRACE_SECRETS;
  if (withheld) {
    snprintf(line + len, sizeof line - len, "(body withheld)");
  } else {
    const unsigned char *p = body;
    size_t show = body_len < TRACE_BODY_MAX ? body_len : TRACE_BODY_MAX;
    for (size_t i = 0; i < show; i++) /* the guest's bytes are untrusted */
      line[len++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '.';
    line[len] = '\0';
    if (show < body_len) snprintf(line + len, sizeof line - len, "...");
  }
  b->log_cb(b->log_data, HCSB_LOG_TRACE, NULL, line);
}

void hcsb__log_guest_error(const hcsb_bridge_t *b, const char *activity_id,
                           const hcsb_guest_error_t *gerr) {
  if (!hcsb__log_on(b, HCSB_LOG_DEBUG)) return;
  char line[LINE_MAX_LEN];
  hcsb_guest_error_format(gerr, line, sizeof line);
  b->log_cb(b->log_data, HCSB_LOG_DEBUG, activity_id, line);
  for (size_t i = 0; i < gerr->nrecords; i++) {
    const hcsb_error_record_t *r = &gerr->records[i];
    hcsb__log(b, HCSB_LOG_DEBUG, activity_id,
              "  record %zu: 0x%08X %s (%s %s:%u %s)", i, r->result, r->message,
              r->module_name ? r->module_name : "-",
              r->file_name ? r->file_name : "-", r->line,
              r->function_name ? r->function_name : "-");
  }
}
