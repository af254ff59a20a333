/* Streams handed out by the transports: heap uv_pipe_t around a socket. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "bridge/sock.h"

static void free_handle(uv_handle_t *h) {
  free(h);
}

void hcsb__stream_close(uv_stream_t *s) {
  if (s == NULL || uv_is_closing((uv_handle_t *)s)) return;
  uv_close((uv_handle_t *)s, free_handle);
}

int hcsb__stream_adopt(uv_loop_t *loop, int fd, uv_stream_t **out) {
  uv_pipe_t *p = malloc(sizeof *p);
  if (p == NULL) return -ENOMEM;
  int rc = uv_pipe_init(loop, p, 0);
  if (rc != 0) {
    free(p);
    return rc;
  }
  rc = uv_pipe_open(p, fd);
  if (rc != 0) {
    /* libuv did not take the descriptor; closing the handle leaves it. */
    uv_close((uv_handle_t *)p, free_handle);
    return rc;
  }
  *out = (uv_stream_t *)p;
  return 0;
}

int hcsb__sockaddr_unix(struct sockaddr_storage *ss, socklen_t *len,
                        const char *path) {
  struct sockaddr_un *sun = (struct sockaddr_un *)ss;
  size_t n = strlen(path);
  if (n == 0) return -EINVAL;
  if (n >= sizeof sun->sun_path) return -ENAMETOOLONG;
  memset(ss, 0, sizeof *ss);
  sun->sun_family = AF_UNIX;
  memcpy(sun->sun_path, path, n + 1);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

void hcsb__dirname(const char *path, char *out, size_t len) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    snprintf(out, len, ".");
  else if (slash == path)
    snprintf(out, len, "/");
  else
    snprintf(out, len, "%.*s", (int)(slash - path), path);
}
