/* The ttrpc server's I/O (server.h): a libuv listener, one pipe per
 * client, each with a session (session.c) that does everything else.
 *
 * Lifetimes: a connection (conn_t) lives until its pipe's close callback,
 * where it detaches its session; a session lives on while it has calls
 * and holds a reference on the server; the server's memory goes once it
 * is closed and the last session is gone. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim/log.h"
#include "shim/server.h"
#include "shim/session.h"

#define DEFAULT_MAX_CLIENTS 64
#define DEFAULT_MAX_OUTPUT (8u << 20)
#define READ_BUF 65536
/* Frames per uv_write; more wait for the next one. */
#define MAX_BUFS 64
/* How long a closing server waits for its clients to take their replies. */
#define CLOSE_FLUSH_MS 3000

typedef struct table_s {
  const hcsb__shim_method_t *methods;
  size_t n;
  void *data;
} table_t;

struct hcsb__shim_server_s {
  uv_loop_t *loop;
  hcsb__shim_server_opts_t opts;
  uv_pipe_t listener;
  int listener_open; /* initialised and not closed yet */
  uv_timer_t close_timer;
  hcsb__link_t conns;
  size_t nconns;
  table_t *tables;
  size_t ntables;
  hcsb__shim_server_stats_t stats;
  size_t refs; /* the server's own, plus one per live session */
  int closing, finishing;
  hcsb__shim_server_close_cb close_cb;
  void *close_data;
};

typedef struct conn_s {
  hcsb__link_t link;
  hcsb__shim_server_t *srv;
  uv_pipe_t pipe;
  hcsb__ttrpc_session_t *session;
  hcsb__link_t queued; /* frames taken from the session, not written yet */
  size_t queued_bytes;
  hcsb__link_t writing; /* frames in the write in flight */
  uv_write_t wreq;
  uv_buf_t bufs[MAX_BUFS];
  int write_active;
  int paused;   /* reading stopped for output pressure */
  int draining; /* disconnect once the output is written */
  int closing;
  char rbuf[READ_BUF];
} conn_t;

static void server_unref(hcsb__shim_server_t *srv) {
  if (--srv->refs > 0) return;
  free(srv->tables);
  free(srv);
}

int hcsb__shim_server_new(uv_loop_t *loop, const hcsb__shim_server_opts_t *opts,
                          hcsb__shim_server_t **out) {
  hcsb__shim_server_t *srv;
  int r;

  if (loop == NULL || out == NULL) return -EINVAL;
  srv = calloc(1, sizeof(*srv));
  if (srv == NULL) return -ENOMEM;
  if (opts != NULL) srv->opts = *opts;
  if (srv->opts.max_clients == 0) srv->opts.max_clients = DEFAULT_MAX_CLIENTS;
  if (srv->opts.max_output == 0) srv->opts.max_output = DEFAULT_MAX_OUTPUT;
  srv->loop = loop;
  srv->refs = 1;
  hcsb__list_init(&srv->conns);
  r = uv_timer_init(loop, &srv->close_timer);
  if (r < 0) {
    free(srv);
    return r;
  }
  srv->close_timer.data = srv;
  *out = srv;
  return 0;
}

static const hcsb__shim_method_t *find(const hcsb__shim_server_t *srv,
                                       const char *service, const char *method,
                                       void **data) {
  size_t t, i;

  for (t = 0; t < srv->ntables; t++)
    for (i = 0; i < srv->tables[t].n; i++) {
      const hcsb__shim_method_t *m = &srv->tables[t].methods[i];
      if (strcmp(m->method, method) == 0 && strcmp(m->service, service) == 0) {
        *data = srv->tables[t].data;
        return m;
      }
    }
  return NULL;
}

int hcsb__shim_server_add(hcsb__shim_server_t *srv,
                          const hcsb__shim_method_t *methods, size_t n,
                          void *data) {
  table_t *t;
  void *ignored;
  size_t i, j;

  if (srv->closing) return -ECANCELED;
  for (i = 0; i < n; i++) {
    const hcsb__shim_method_t *m = &methods[i];
    if (m->service == NULL || m->method == NULL || m->handler == NULL)
      return -EINVAL;
    if (find(srv, m->service, m->method, &ignored) != NULL) return -EEXIST;
    for (j = 0; j < i; j++)
      if (strcmp(methods[j].service, m->service) == 0 &&
          strcmp(methods[j].method, m->method) == 0)
        return -EEXIST;
  }
  t = realloc(srv->tables, (srv->ntables + 1) * sizeof(*t));
  if (t == NULL) return -ENOMEM;
  srv->tables = t;
  t[srv->ntables].methods = methods;
  t[srv->ntables].n = n;
  t[srv->ntables].data = data;
  srv->ntables++;
  return 0;
}

void hcsb__shim_server_stats(const hcsb__shim_server_t *srv,
                             hcsb__shim_server_stats_t *out) {
  *out = srv->stats;
  out->clients = srv->nconns;
}

/* ------------------------------------------------------------------------ */
/* Closing */

static void on_timer_closed(uv_handle_t *h) {
  hcsb__shim_server_t *srv = h->data;

  if (srv->close_cb != NULL) srv->close_cb(srv, srv->close_data);
  server_unref(srv);
}

/* Once closing and nothing is open but the timer: close it, then tell. */
static void maybe_finish(hcsb__shim_server_t *srv) {
  if (!srv->closing || srv->finishing || srv->listener_open || srv->nconns > 0)
    return;
  srv->finishing = 1;
  uv_close((uv_handle_t *)&srv->close_timer, on_timer_closed);
}

static void on_listener_closed(uv_handle_t *h) {
  hcsb__shim_server_t *srv = h->data;

  srv->listener_open = 0;
  maybe_finish(srv);
}

static void free_frames(hcsb__link_t *list) {
  while (!hcsb__list_empty(list)) {
    hcsb__link_t *l = list->next;
    hcsb__list_remove(l);
    hcsb__ttrpc_out_free(HCSB__CONTAINER_OF(l, hcsb__ttrpc_out_t, link));
  }
}

/* Reply bytes not written yet: in the session and taken from it. */
static size_t pending_output(const conn_t *c) {
  return hcsb__ttrpc_session_output_bytes(c->session) + c->queued_bytes;
}

static void on_session_free(void *free_ctx) {
  server_unref(free_ctx);
}

static void on_conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  hcsb__shim_server_t *srv = c->srv;

  free_frames(&c->writing);
  free_frames(&c->queued);
  hcsb__list_remove(&c->link);
  srv->nconns--;
  /* May run gone callbacks; the session may outlive us. */
  if (c->session != NULL) hcsb__ttrpc_session_detach(c->session);
  free(c);
  maybe_finish(srv);
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_close_timeout(uv_timer_t *t) {
  hcsb__shim_server_t *srv = t->data;
  hcsb__link_t *l, *next;

  for (l = srv->conns.next; l != &srv->conns; l = next) {
    next = l->next;
    conn_t *c = HCSB__CONTAINER_OF(l, conn_t, link);
    if (!c->closing)
      SHIM_WARN("ttrpc: a client took no replies for %d ms; disconnecting it",
                CLOSE_FLUSH_MS);
    conn_close(c);
  }
}

static void start_write(conn_t *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Disconnect once what is queued has been written. */
static void conn_drain(conn_t *c) {
  c->draining = 1;
  uv_read_stop((uv_stream_t *)&c->pipe);
  if (!c->write_active) {
    if (pending_output(c) > 0)
      start_write(c);
    else
      conn_close(c);
  }
}

void hcsb__shim_server_close(hcsb__shim_server_t *srv,
                             hcsb__shim_server_close_cb cb, void *data) {
  hcsb__link_t *l, *next;

  if (srv->closing) return;
  srv->closing = 1;
  srv->close_cb = cb;
  srv->close_data = data;
  if (srv->listener_open)
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
  for (l = srv->conns.next; l != &srv->conns; l = next) {
    next = l->next;
    conn_t *c = HCSB__CONTAINER_OF(l, conn_t, link);
    if (c->closing) continue;
    hcsb__ttrpc_session_stop(c->session);
    conn_drain(c);
  }
  if (srv->nconns > 0)
    uv_timer_start(&srv->close_timer, on_close_timeout, CLOSE_FLUSH_MS, 0);
  maybe_finish(srv);
}

/* ------------------------------------------------------------------------ */
/* Writing */

static void on_written(uv_write_t *req, int status) {
  conn_t *c = req->data;
  hcsb__shim_server_t *srv = c->srv;

  c->write_active = 0;
  free_frames(&c->writing);
  if (c->closing) return;
  if (status < 0) {
    SHIM_DEBUG("ttrpc: write to a client failed (%s)", uv_strerror(status));
    conn_close(c);
    return;
  }
  if (pending_output(c) > 0) {
    start_write(c);
  } else if (c->draining) {
    conn_close(c);
    return;
  }
  if (c->paused && !c->draining && !c->closing &&
      pending_output(c) <= srv->opts.max_output / 2) {
    c->paused = 0;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
  }
}

/* Writes up to MAX_BUFS queued frames in one uv_write. */
static void start_write(conn_t *c) {
  size_t n = 0;
  int r;

  c->queued_bytes += hcsb__ttrpc_session_take_output(c->session, &c->queued);
  while (!hcsb__list_empty(&c->queued) && n < MAX_BUFS) {
    hcsb__link_t *l = c->queued.next;
    hcsb__ttrpc_out_t *o = HCSB__CONTAINER_OF(l, hcsb__ttrpc_out_t, link);

    hcsb__list_remove(l);
    hcsb__list_push(&c->writing, l);
    c->queued_bytes -= o->len;
    c->bufs[n++] = uv_buf_init((char *)o->data, (unsigned)o->len);
  }
  if (n == 0) return;
  c->wreq.data = c;
  c->write_active = 1;
  r = uv_write(&c->wreq, (uv_stream_t *)&c->pipe, c->bufs, (unsigned)n,
               on_written);
  if (r < 0) {
    c->write_active = 0;
    SHIM_DEBUG("ttrpc: write to a client failed (%s)", uv_strerror(r));
    conn_close(c);
  }
}

static const hcsb__shim_method_t *lookup(void *ctx, const char *service,
                                         const char *method, void **data) {
  conn_t *c = ctx;

  return find(c->srv, service, method, data);
}

static void on_output(void *ctx) {
  conn_t *c = ctx;

  if (!c->write_active && !c->closing) start_write(c);
}

/* ------------------------------------------------------------------------ */
/* Reading */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  conn_t *c = h->data;

  (void)hint;
  *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  hcsb__shim_server_t *srv = c->srv;
  int r;

  if (nread == 0) return;
  if (nread < 0) {
    /* The client left (EOF) or the connection broke: its replies have
     * nowhere to go. */
    if (nread != UV_EOF)
      SHIM_DEBUG("ttrpc: read from a client failed (%s)",
                 uv_strerror((int)nread));
    conn_close(c);
    return;
  }
  r = hcsb__ttrpc_session_feed(c->session, (const uint8_t *)buf->base,
                               (size_t)nread);
  if (c->closing || c->draining) return;
  if (r < 0) {
    srv->stats.clients_malformed++;
    conn_drain(c);
    return;
  }
  if (pending_output(c) > srv->opts.max_output) {
    c->paused = 1;
    uv_read_stop(stream);
  }
}

/* ------------------------------------------------------------------------ */
/* Accepting */

static void on_connection(uv_stream_t *listener, int status) {
  hcsb__shim_server_t *srv = listener->data;
  hcsb__ttrpc_session_cfg_t cfg;
  conn_t *c;
  int r;

  if (status < 0) {
    SHIM_WARN("ttrpc: accept failed (%s)", uv_strerror(status));
    return;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL || uv_pipe_init(srv->loop, &c->pipe, 0) < 0) {
    /* Without a handle to accept into, the pending connection stays in
     * the backlog until the next one; nothing better to do. */
    SHIM_ERROR("ttrpc: out of memory accepting a client");
    free(c);
    return;
  }
  c->srv = srv;
  c->pipe.data = c;
  hcsb__list_init(&c->queued);
  hcsb__list_init(&c->writing);
  hcsb__list_push(&srv->conns, &c->link);
  srv->nconns++;
  r = uv_accept(listener, (uv_stream_t *)&c->pipe);
  if (r == 0 && srv->nconns > srv->opts.max_clients) {
    SHIM_WARN("ttrpc: more than %zu clients; refusing one",
              srv->opts.max_clients);
    srv->stats.clients_refused++;
    r = UV_EMFILE;
  }
  if (r == 0) {
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_calls = srv->opts.max_calls;
    cfg.on_output = on_output;
    cfg.ctx = c;
    cfg.on_free = on_session_free;
    cfg.free_ctx = srv;
    cfg.stats = &srv->stats;
    cfg.lookup = lookup;
    r = hcsb__ttrpc_session_new(&cfg, &c->session) < 0 ? UV_ENOMEM : 0;
    if (r == 0) srv->refs++;
  }
  if (r == 0) r = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
  if (r < 0) {
    if (r != UV_EMFILE)
      SHIM_WARN("ttrpc: cannot serve a client (%s)", uv_strerror(r));
    conn_close(c);
    return;
  }
  srv->stats.clients_accepted++;
}

static int start_listening(hcsb__shim_server_t *srv) {
  int r = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);

  if (r < 0) uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
  return r;
}

int hcsb__shim_server_listen_fd(hcsb__shim_server_t *srv, int fd) {
  int r;

  if (srv->closing || srv->listener_open) {
    close(fd);
    return srv->closing ? -ECANCELED : -EBUSY;
  }
  r = uv_pipe_init(srv->loop, &srv->listener, 0);
  if (r < 0) {
    close(fd);
    return r;
  }
  srv->listener.data = srv;
  srv->listener_open = 1;
  r = uv_pipe_open(&srv->listener, fd);
  if (r < 0) {
    close(fd);
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    return r;
  }
  return start_listening(srv);
}

int hcsb__shim_server_listen(hcsb__shim_server_t *srv, const char *path) {
  int r;

  if (srv->closing) return -ECANCELED;
  if (srv->listener_open) return -EBUSY;
  r = uv_pipe_init(srv->loop, &srv->listener, 0);
  if (r < 0) return r;
  srv->listener.data = srv;
  srv->listener_open = 1;
  r = uv_pipe_bind(&srv->listener, path);
  if (r < 0) {
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    return r;
  }
  return start_listening(srv);
}
