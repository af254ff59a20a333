/* QEMU and hcsb-vsockd as child processes (uvm-int.h).
 *
 * Each runs under hcsb-uvm-exec (the kernel kills it when its starter
 * dies), in a session of its own (a terminal's Ctrl-C reaches only the
 * embedding program, which then closes the VM in order), with its stderr
 * on a pipe we read line by line into the VM's log (stdout goes to
 * /dev/null: neither program writes anything useful there), keeping
 * the last lines for the exit information.  It is signalled by PID only
 * until libuv reaped it: after that the PID may name someone else. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "uvm/uvm-int.h"

static void err_bytes(hcsb__vmproc_t *c, const char *p, size_t n);

/* What it wrote just before it died may still be in the pipe when its
 * exit is reported: read that first, for the exit information. */
static void err_drain(hcsb__vmproc_t *c) {
  uv_os_fd_t fd;
  if (!c->err_reading || uv_fileno((uv_handle_t *)&c->err, &fd) != 0) return;
  for (int i = 0; i < 64; i++) {
    ssize_t n = read(fd, c->rbuf, sizeof c->rbuf);
    if (n <= 0) break;
    err_bytes(c, c->rbuf, (size_t)n);
  }
}

static void child_exit(uv_process_t *p, int64_t status, int signum) {
  hcsb__vmproc_t *c = p->data;
  hcsb_uvm_t *u = c->uvm;

  err_drain(c);
  c->exited = 1;
  c->exit_status = status;
  c->term_signal = signum;
  hcsb__uvm_log(u, HCSB_LOG_DEBUG, "%s (pid %d) exited: status %lld signal %d",
                c->name, c->pid, (long long)status, signum);
  hcsb__handle_ref(&u->h);
  c->on_exit(c);
  hcsb__uvm_check_idle(u);
  hcsb__handle_unref(&u->h);
}

static void keep_tail(hcsb__vmproc_t *c, const char *p, size_t n) {
  if (n >= sizeof c->tail) {
    p += n - sizeof c->tail;
    n = sizeof c->tail;
  }
  if (c->tail_len + n > sizeof c->tail) {
    size_t drop = c->tail_len + n - sizeof c->tail;
    memmove(c->tail, c->tail + drop, c->tail_len - drop);
    c->tail_len -= drop;
  }
  memcpy(c->tail + c->tail_len, p, n);
  c->tail_len += n;
}

static void flush_line(hcsb__vmproc_t *c) {
  if (c->line_len == 0) return;
  hcsb__uvm_log(c->uvm, HCSB_LOG_INFO, "%s: %.*s", c->name, (int)c->line_len,
                c->line);
  c->line_len = 0;
}

static void err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  hcsb__vmproc_t *c = h->data;
  (void)hint;
  *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void err_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hcsb__vmproc_t *c = s->data;

  if (nread < 0) {
    flush_line(c);
    uv_read_stop(s);
    c->err_reading = 0;
    return;
  }
  err_bytes(c, buf->base, (size_t)nread);
}

static void err_bytes(hcsb__vmproc_t *c, const char *p, size_t n) {
  keep_tail(c, p, n);
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == '\n' || c->line_len == sizeof c->line) flush_line(c);
    if (ch != '\n' && ch != '\r') c->line[c->line_len++] = ch;
  }
}

int hcsb__vmproc_spawn(hcsb__vmproc_t *c, hcsb_uvm_t *u, const char *name,
                       const hcsb__argv_t *argv, uv_stdio_container_t *extra,
                       int nextra, void (*on_exit)(hcsb__vmproc_t *c)) {
  uv_stdio_container_t stdio[8];
  uv_process_options_t po;
  int rc;

  memset(c, 0, sizeof *c);
  c->uvm = u;
  c->name = name;
  c->on_exit = on_exit;
  rc = uv_pipe_init(u->loop, &c->err, 0);
  if (rc != 0) return rc;
  c->err.data = c;
  c->err_open = 1;
  memset(stdio, 0, sizeof stdio);
  stdio[0].flags = UV_IGNORE; /* /dev/null */
  stdio[1].flags = UV_IGNORE;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&c->err;
  for (int i = 0; i < nextra && i < 5; i++) stdio[3 + i] = extra[i];
  memset(&po, 0, sizeof po);
  po.file = argv->v[0];
  po.args = argv->v;
  po.exit_cb = child_exit;
  po.flags = UV_PROCESS_DETACHED;
  po.stdio = stdio;
  po.stdio_count = 3 + nextra;
  c->proc.data = c;
  rc = uv_spawn(u->loop, &c->proc, &po);
  if (rc != 0) {
    /* libuv closes the process handle itself only on success; a failed
     * spawn still needs uv_close for the handle it initialised. */
    hcsb__handle_uv_close(&u->h, (uv_handle_t *)&c->proc);
    hcsb__handle_uv_close(&u->h, (uv_handle_t *)&c->err);
    c->err_open = 0;
    return rc;
  }
  c->spawned = 1;
  c->pid = c->proc.pid;
  hcsb__uvm_log(u, HCSB_LOG_DEBUG, "%s started, pid %d", name, c->pid);
  if (uv_read_start((uv_stream_t *)&c->err, err_alloc, err_read) == 0)
    c->err_reading = 1;
  return 0;
}

void hcsb__vmproc_kill(hcsb__vmproc_t *c, int signum) {
  if (!hcsb__vmproc_running(c)) return;
  hcsb__uvm_log(c->uvm, HCSB_LOG_DEBUG, "%s (pid %d): signal %d", c->name,
                c->pid, signum);
  uv_process_kill(&c->proc, signum);
}

void hcsb__vmproc_close(hcsb__vmproc_t *c) {
  if (c->spawned) {
    c->spawned = 0;
    hcsb__handle_uv_close(&c->uvm->h, (uv_handle_t *)&c->proc);
  }
  if (c->err_open) {
    c->err_open = 0;
    flush_line(c);
    hcsb__handle_uv_close(&c->uvm->h, (uv_handle_t *)&c->err);
  }
}
