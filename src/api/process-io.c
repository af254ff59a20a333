/* A process's stdio as the API shows it: the raw libuv streams, and the
 * convenience read/write calls, with the process kept alive (and its close
 * callback held back) while any of them can still call the user. */
#include <stdlib.h>

#include "api/api-int.h"

static uv_stream_t *stream(const hcsb_process_t *p, int fd) {
  return p == NULL || p->stdio == NULL ? NULL
                                       : hcsb__stdio_stream(p->stdio, fd);
}

uv_stream_t *hcsb_process_stdin(const hcsb_process_t *p) {
  return stream(p, 0);
}

uv_stream_t *hcsb_process_stdout(const hcsb_process_t *p) {
  return stream(p, 1);
}

uv_stream_t *hcsb_process_stderr(const hcsb_process_t *p) {
  return stream(p, 2);
}

static int close_fd(hcsb_process_t *p, int fd) {
  if (p != NULL && p->stdio != NULL) (void)hcsb__stdio_close_fd(p->stdio, fd);
  return 0;
}

int hcsb_process_close_stdin(hcsb_process_t *p) {
  return close_fd(p, 0);
}

int hcsb_process_close_stdout(hcsb_process_t *p) {
  return close_fd(p, 1);
}

int hcsb_process_close_stderr(hcsb_process_t *p) {
  return close_fd(p, 2);
}

static void on_read(void *data, int fd, const char *buf, ssize_t nread) {
  hcsb_process_t *p = data;

  hcsb__obj_ref(&p->obj);
  if (p->read_cb != NULL) p->read_cb(p->read_data, p, fd, buf, nread);
  hcsb__obj_unref(&p->obj);
}

int hcsb_process_read_start(hcsb_process_t *p, hcsb_process_read_cb cb,
                            void *data) {
  if (p == NULL || cb == NULL) return -EINVAL;
  if (p->ports[1] == 0 && p->ports[2] == 0) return -EINVAL;
  if (p->stdio == NULL) return -EPIPE;
  p->read_cb = cb;
  p->read_data = data;
  return hcsb__stdio_read_start(p->stdio, on_read, p);
}

int hcsb_process_read_stop(hcsb_process_t *p) {
  if (p == NULL) return -EINVAL;
  if (p->stdio == NULL) return 0;
  return hcsb__stdio_read_stop(p->stdio);
}

typedef struct write_s {
  hcsb_process_t *p;
  hcsb_done_cb cb;
  void *data;
} write_t;

static void on_written(void *data, int status, const hcsb_guest_error_t *gerr) {
  write_t *w = data;
  hcsb_process_t *p = w->p;

  if (w->cb != NULL) w->cb(w->data, status, gerr);
  free(w);
  p->nwrites--;
  hcsb__obj_check_closed(&p->obj);
  hcsb__obj_unref(&p->obj);
}

int hcsb_process_write(hcsb_process_t *p, const void *buf, size_t len,
                       hcsb_done_cb cb, void *data) {
  write_t *w;
  int r;

  if (p == NULL || (buf == NULL && len != 0)) return -EINVAL;
  if (p->stdio == NULL || p->obj.base.closing || p->ports[0] == 0)
    return -EPIPE;
  w = malloc(sizeof(*w));
  if (w == NULL) return -ENOMEM;
  w->p = p;
  w->cb = cb;
  w->data = data;
  r = hcsb__stdio_write(p->stdio, buf, len, on_written, w);
  if (r != 0) {
    free(w);
    return r;
  }
  hcsb__obj_ref(&p->obj);
  p->nwrites++;
  return 0;
}
