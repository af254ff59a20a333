/* hcsb-fastpeer: a guest that answers instantly, to measure clients against.
 *
 * It defines the limit the benchmark compares with, so it does as little as
 * the protocol allows: one read per wake-up into a large buffer, frames cut
 * by the protocol core's decoder (zero-copy when a frame lies in the chunk),
 * GetProperties answered from a canned body with only the ActivityId copied
 * in, and every response produced by one wake-up written with one write().
 *
 *   hcsb-fastpeer --unix PATH     listen on a Unix socket, serve every
 *                                 connection until killed
 *   hcsb-fastpeer --stdio         serve one connection on stdin/stdout and
 *                                 exit when it ends (spawn: transport)
 *   --never-answer                negotiate, then read and drop everything
 *   --stdio-dir DIR               relay sockets DIR/<port>.sock (default
 *                                 $HCSB_STDIO_DIR)
 *   --payload BYTES               stdout bytes per process (default 64)
 *   --first-pid N                 the first ProcessId handed out (default 100)
 *   --fail-every N                answer every Nth GetProperties with E_FAIL
 *                                 (to check that clients notice)
 *   --record FILE                 append the first GetProperties body of each
 *                                 connection to FILE, one per line
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>

#include "tools/bench/fastpeer.h"
#include "tools/bench/payload.h"

#define READ_CHUNK (256u * 1024u)
/* Stop reading a connection whose responses pile up unread. */
#define OUT_HIGH_WATER (16u * 1024u * 1024u)
#define MAX_REQUEST (64u * 1024u * 1024u)

static const char negotiate_extra[] =
    ",\"Version\":4,\"Capabilities\":{\"SupportedSchemaVersions\":"
    "[{\"Major\":2,\"Minor\":1}],\"RuntimeOsType\":\"Linux\","
    "\"GuestDefinedCapabilities\":{\"NamespaceAddRequestSupported\":true,"
    "\"SignalProcessSupported\":true,\"DumpStacksSupported\":true,"
    "\"DeleteContainerStateSupported\":true}}";

static const char props_head[] = "{\"Result\":0,\"ActivityId\":\"";
static const char props_tail[] =
    "\",\"Properties\":\"{\\\"ProcessList\\\":[{\\\"ProcessId\\\":1},"
    "{\\\"ProcessId\\\":42}]}\"}";
static const char props_noaid[] =
    ",\"Properties\":\"{\\\"ProcessList\\\":[{\\\"ProcessId\\\":1},"
    "{\\\"ProcessId\\\":42}]}\"";

static uint8_t read_buf[READ_CHUNK];

static void die_oom(void) {
  fprintf(stderr, "hcsb-fastpeer: out of memory\n");
  exit(1);
}

/* Later events of the same epoll_wait batch may still point at `obj`. */
void peer_bury(peer_t *p, void *obj) {
  void **g;

  if (p->ngrave == p->grave_cap) {
    p->grave_cap = p->grave_cap ? p->grave_cap * 2 : 64;
    g = realloc(p->grave, p->grave_cap * sizeof(*g));
    if (g == NULL) die_oom();
    p->grave = g;
  }
  p->grave[p->ngrave++] = obj;
}

static void die(const char *what) {
  fprintf(stderr, "hcsb-fastpeer: %s: %s\n", what, strerror(errno));
  exit(1);
}

void peer_epoll_set(peer_t *p, int fd, peer_src_t *src, uint32_t events,
                    int add) {
  struct epoll_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.ptr = src;
  if (epoll_ctl(p->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0)
    die("epoll_ctl");
}

/* Copies the top-level "ActivityId" string (GUIDs carry no escapes).
 * Returns its length, 0 when absent or not a plain short string.  A client
 * sends the same shape every time, so the key is first looked for where
 * `hint` (may be NULL) says it was in the previous request. */
size_t peer_activity_id(const uint8_t *body, size_t len, char out[40],
                        size_t *hint) {
  static const char key[] = "\"ActivityId\"";
  const size_t klen = sizeof(key) - 1;
  const char *end = (const char *)body + len, *p = NULL, *q;

  if (hint != NULL && *hint + klen <= len &&
      memcmp(body + *hint, key, klen) == 0)
    p = (const char *)body + *hint;
  if (p == NULL) p = memmem(body, len, key, klen);
  if (p == NULL) return 0;
  if (hint != NULL) *hint = (size_t)(p - (const char *)body);
  p += sizeof(key) - 1;
  while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n')) p++;
  if (p == end || *p != '"') return 0;
  p++;
  for (q = p; q < end && *q != '"'; q++)
    if (*q == '\\' || q - p >= 39) return 0;
  if (q == end) return 0;
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = '\0';
  return (size_t)(q - p);
}

static void put_header(peer_conn_t *c, size_t start, uint32_t req_type,
                       uint64_t id) {
  hcsb__hdr_t h;

  h.type = hcsb_msg_response_type(req_type);
  h.size = (uint32_t)(c->out.len - start);
  h.id = id;
  hcsb__hdr_encode((uint8_t *)c->out.data + start, &h);
}

static void out_append(peer_conn_t *c, const void *p, size_t n) {
  memcpy(c->out.data + c->out.len, p, n);
  c->out.len += n;
}

/* Appends a response: {"Result":R[,"ActivityId":"A"]EXTRA}. */
void peer_respond(peer_conn_t *c, uint32_t req_type, uint64_t id,
                  const char *aid, uint32_t result, const char *extra) {
  size_t start = c->out.len, aid_len = aid ? strlen(aid) : 0;
  size_t extra_len = extra ? strlen(extra) : 0;
  char num[32];
  int n;

  if (hcsb__buf_reserve(&c->out, HCSB__HDR_SIZE + 64 + aid_len + extra_len) !=
      0)
    die_oom();
  c->out.len += HCSB__HDR_SIZE;
  n = snprintf(num, sizeof(num), "{\"Result\":%d", (int)(int32_t)result);
  out_append(c, num, (size_t)n);
  if (aid_len > 0) {
    out_append(c, ",\"ActivityId\":\"", 15);
    out_append(c, aid, aid_len);
    out_append(c, "\"", 1);
  }
  out_append(c, extra, extra_len);
  out_append(c, "}", 1);
  put_header(c, start, req_type, id);
}

static void respond_properties(peer_conn_t *c, uint64_t id, const uint8_t *body,
                               size_t len) {
  char aid[40];
  size_t aid_len = peer_activity_id(body, len, aid, &c->aid_hint);
  size_t start = c->out.len;

  if (aid_len == 0) {
    peer_respond(c, HCSB_MSG_GET_PROPERTIES, id, NULL, 0, props_noaid);
    return;
  }
  if (hcsb__buf_reserve(&c->out, HCSB__HDR_SIZE + sizeof(props_head) + aid_len +
                                     sizeof(props_tail)) != 0)
    die_oom();
  c->out.len += HCSB__HDR_SIZE;
  out_append(c, props_head, sizeof(props_head) - 1);
  out_append(c, aid, aid_len);
  out_append(c, props_tail, sizeof(props_tail) - 1);
  put_header(c, start, HCSB_MSG_GET_PROPERTIES, id);
}

static void record(peer_conn_t *c, const hcsb__frame_t *f) {
  FILE *fp = fopen(c->peer->record, "a");

  c->recorded = 1;
  if (fp == NULL) die("record");
  fwrite(f->body, 1, f->body_len, fp);
  fputc('\n', fp);
  fclose(fp);
}

static void on_frame(peer_conn_t *c, const hcsb__frame_t *f) {
  peer_t *p = c->peer;
  char aid[40];
  size_t aid_len;

  if (f->hdr.type == HCSB_MSG_GET_PROPERTIES && !p->never_answer) {
    if (p->record != NULL && !c->recorded) record(c, f);
    if (p->fail_every != 0 && ++p->properties_seen % p->fail_every == 0) {
      aid_len = peer_activity_id(f->body, f->body_len, aid, NULL);
      peer_respond(c, f->hdr.type, f->hdr.id, aid_len ? aid : NULL, HCSB_E_FAIL,
                   ",\"ErrorMessage\":\"hcsb-fastpeer: injected failure\"");
      return;
    }
    respond_properties(c, f->hdr.id, f->body, f->body_len);
    return;
  }
  if (f->hdr.type == HCSB_MSG_NEGOTIATE_PROTOCOL) {
    aid_len = peer_activity_id(f->body, f->body_len, aid, NULL);
    peer_respond(c, f->hdr.type, f->hdr.id, aid_len ? aid : NULL, 0,
                 negotiate_extra);
    return;
  }
  if (p->never_answer) return;
  switch (f->hdr.type) {
    case HCSB_MSG_EXECUTE_PROCESS:
      peer_exec(c, f->hdr.id, f->body, f->body_len);
      break;
    case HCSB_MSG_WAIT_FOR_PROCESS:
      peer_wait(c, f->hdr.id, f->body, f->body_len);
      break;
    default:
      aid_len = peer_activity_id(f->body, f->body_len, aid, NULL);
      peer_respond(c, f->hdr.type, f->hdr.id, aid_len ? aid : NULL,
                   HCSB_E_NOTIMPL,
                   ",\"ErrorMessage\":\"hcsb-fastpeer: not implemented\"");
      break;
  }
}

/* The registrations a connection wants: read unless its output backs up,
 * write while output is pending.  One registration when both directions
 * share a descriptor. */
static void conn_arm(peer_conn_t *c) {
  size_t queued = c->out.len - c->out_off;
  int want_in = queued<OUT_HIGH_WATER, want_out = queued> 0;
  peer_t *p = c->peer;

  if (c->rfd == c->wfd) {
    if (want_in == c->in_armed && want_out == c->out_armed) return;
    peer_epoll_set(p, c->rfd, &c->in_src,
                   (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0), 0);
  } else {
    if (want_in != c->in_armed)
      peer_epoll_set(p, c->rfd, &c->in_src, want_in ? EPOLLIN : 0, 0);
    if (want_out && !c->out_armed) {
      peer_epoll_set(p, c->wfd, &c->out_src, EPOLLOUT, 1);
    } else if (!want_out && c->out_armed) {
      if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->wfd, NULL) != 0)
        die("epoll_ctl");
    }
  }
  c->in_armed = want_in;
  c->out_armed = want_out;
}

static void conn_close(peer_conn_t *c) {
  peer_t *p = c->peer;

  peer_procs_free(c);
  if (c->out_armed && c->wfd != c->rfd)
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->wfd, NULL);
  epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->rfd, NULL);
  close(c->rfd);
  if (c->wfd != c->rfd) close(c->wfd);
  hcsb__decoder_free(&c->dec);
  hcsb__buf_free(&c->out);
  if (p->stdio_mode) exit(0);
  c->in_src.dead = c->out_src.dead = 1;
  peer_bury(p, c);
}

/* Writes what is queued.  Returns -1 when the host is gone. */
static int conn_write(peer_conn_t *c) {
  ssize_t n;

  while (c->out_off < c->out.len) {
    n = write(c->wfd, c->out.data + c->out_off, c->out.len - c->out_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return -1;
    }
    c->out_off += (size_t)n;
  }
  if (c->out_off == c->out.len) c->out_off = c->out.len = 0;
  conn_arm(c);
  return 0;
}

/* Called after relay events produced responses. */
void peer_flush(peer_conn_t *c) {
  if (conn_write(c) != 0) conn_close(c);
}

static void conn_read(peer_conn_t *c) {
  const uint8_t *data = read_buf;
  hcsb__dec_event_t ev;
  hcsb__frame_t f;
  size_t used;
  ssize_t n;

  n = read(c->rfd, read_buf, sizeof(read_buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    conn_close(c);
    return;
  }
  while (n > 0) {
    ev = hcsb__decoder_feed(&c->dec, data, (size_t)n, &used, &f);
    data += used;
    n -= (ssize_t)used;
    if (ev == HCSB__DEC_FRAME) {
      on_frame(c, &f);
    } else if (ev == HCSB__DEC_NEED_MORE || ev == HCSB__DEC_OVERSIZE) {
      continue;
    } else {
      fprintf(stderr, "hcsb-fastpeer: undecodable stream\n");
      conn_close(c);
      return;
    }
  }
  if (conn_write(c) != 0) conn_close(c);
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);

  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) die("fcntl");
}

static void conn_new(peer_t *p, int rfd, int wfd) {
  peer_conn_t *c = calloc(1, sizeof(*c));

  if (c == NULL) die_oom();
  c->in_src.kind = PEER_CONN_IN;
  c->out_src.kind = PEER_CONN_OUT;
  c->peer = p;
  c->rfd = rfd;
  c->wfd = wfd;
  set_nonblock(rfd);
  if (wfd != rfd) set_nonblock(wfd);
  hcsb__decoder_init(&c->dec, MAX_REQUEST);
  c->in_armed = 1;
  peer_epoll_set(p, rfd, &c->in_src, EPOLLIN, 1);
}

/* Binds under a temporary name and renames once listening, so the path
 * appears only when a connect to it can succeed. */
static int listen_unix(const char *path) {
  struct sockaddr_un sa;
  char tmp[sizeof(sa.sun_path)];
  int fd;

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid()) >=
          (int)sizeof(tmp) ||
      strlen(path) >= sizeof(sa.sun_path)) {
    fprintf(stderr, "hcsb-fastpeer: path too long: %s\n", path);
    exit(2);
  }
  memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  unlink(tmp);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) die("bind");
  if (listen(fd, SOMAXCONN) != 0) die("listen");
  if (rename(tmp, path) != 0) die("rename");
  return fd;
}

static void on_accept(peer_t *p, int lfd) {
  int fd;

  for (;;) {
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN) return;
      /* Out of descriptors: stop accepting for now rather than spin. */
      perror("hcsb-fastpeer: accept");
      return;
    }
    conn_new(p, fd, fd);
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: hcsb-fastpeer (--unix PATH | --stdio) [--never-answer]\n"
          "                     [--stdio-dir DIR] [--payload BYTES]\n"
          "                     [--fail-every N] [--record FILE] "
          "[--first-pid N]\n");
  exit(2);
}

static void dispatch(peer_t *p, const struct epoll_event *ev, int lfd) {
  peer_src_t *src = ev->data.ptr;
  peer_conn_t *c;

  if (src->dead) return;
  switch (src->kind) {
    case PEER_LISTENER:
      on_accept(p, lfd);
      break;
    case PEER_CONN_IN:
      c = (peer_conn_t *)((char *)src - offsetof(peer_conn_t, in_src));
      /* Writing first lets a backed-up connection resume reading. */
      if ((ev->events & EPOLLOUT) && conn_write(c) != 0) {
        conn_close(c);
        break;
      }
      if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) conn_read(c);
      break;
    case PEER_CONN_OUT:
      c = (peer_conn_t *)((char *)src - offsetof(peer_conn_t, out_src));
      if (conn_write(c) != 0) conn_close(c);
      break;
    case PEER_RELAY:
      peer_relay_event((peer_relay_t *)src, ev->events);
      break;
  }
}

int main(int argc, char **argv) {
  static peer_src_t listener_src = {PEER_LISTENER, 0};
  struct epoll_event evs[256];
  const char *unix_path = NULL;
  peer_t p;
  int i, n, lfd = -1;
  long v;

  memset(&p, 0, sizeof(p));
  p.payload_len = BENCH_PAYLOAD_DEFAULT;
  p.next_pid = 100;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--unix") == 0 && i + 1 < argc) {
      unix_path = argv[++i];
    } else if (strcmp(argv[i], "--stdio") == 0) {
      p.stdio_mode = 1;
    } else if (strcmp(argv[i], "--never-answer") == 0) {
      p.never_answer = 1;
    } else if (strcmp(argv[i], "--stdio-dir") == 0 && i + 1 < argc) {
      p.stdio_dir = argv[++i];
    } else if (strcmp(argv[i], "--fail-every") == 0 && i + 1 < argc) {
      v = strtol(argv[++i], NULL, 10);
      if (v < 1) usage();
      p.fail_every = (uint64_t)v;
    } else if (strcmp(argv[i], "--first-pid") == 0 && i + 1 < argc) {
      v = strtol(argv[++i], NULL, 10);
      if (v < 1 || v > 2000000000L) usage();
      p.next_pid = (uint32_t)v;
    } else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc) {
      p.record = argv[++i];
    } else if (strcmp(argv[i], "--payload") == 0 && i + 1 < argc) {
      v = strtol(argv[++i], NULL, 10);
      if (v < 1 || v > (long)BENCH_PAYLOAD_MAX) usage();
      p.payload_len = (size_t)v;
    } else {
      usage();
    }
  }
  if ((unix_path == NULL) == !p.stdio_mode) usage();
  if (p.stdio_dir == NULL) p.stdio_dir = getenv("HCSB_STDIO_DIR");

  signal(SIGPIPE, SIG_IGN);
  p.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (p.epfd < 0) die("epoll_create1");
  if (p.stdio_mode) {
    conn_new(&p, 0, 1);
  } else {
    lfd = listen_unix(unix_path);
    peer_epoll_set(&p, lfd, &listener_src, EPOLLIN, 1);
  }
  for (;;) {
    n = epoll_wait(p.epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (i = 0; i < n; i++) dispatch(&p, &evs[i], lfd);
    while (p.ngrave > 0) free(p.grave[--p.ngrave]);
  }
}
