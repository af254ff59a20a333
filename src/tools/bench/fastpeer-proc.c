/* hcsb-fastpeer processes: ExecuteProcess dials the requested relay ports as
 * Unix sockets <stdio-dir>/<port>.sock, writes the payload to stdout and
 * half-closes; the process "exits" once the host has closed every output
 * relay (the drain handshake of protocol.md §9.5), and only then is
 * WaitForProcess answered with ExitCode 0. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tools/bench/fastpeer.h"
#include "tools/bench/payload.h"

static const char *const pipe_keys[3] = {"CreateStdInPipe", "CreateStdOutPipe",
                                         "CreateStdErrPipe"};
static const char *const port_keys[3] = {"StdIn", "StdOut", "StdErr"};

static int dial(const char *dir, uint32_t port) {
  struct sockaddr_un sa;
  int fd;

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (dir == NULL || snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%u.sock",
                              dir, (unsigned)port) >= (int)sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  /* A Unix connect completes at once or fails (EAGAIN: backlog full). */
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

static void relay_close(peer_relay_t *r) {
  peer_t *p = r->proc->conn->peer;

  r->proc->relays[r->which] = NULL;
  epoll_ctl(p->epfd, EPOLL_CTL_DEL, r->fd, NULL);
  close(r->fd);
  free(r->pending);
  r->src.dead = 1;
  peer_bury(p, r);
}

static void proc_free(peer_proc_t *proc) {
  peer_proc_t **pp;
  peer_wait_t *w;
  int i;

  for (pp = &proc->conn->procs; *pp != proc; pp = &(*pp)->next) continue;
  *pp = proc->next;
  for (i = 0; i < 3; i++)
    if (proc->relays[i] != NULL) relay_close(proc->relays[i]);
  while ((w = proc->waits) != NULL) {
    proc->waits = w->next;
    free(w);
  }
  free(proc);
}

static void answer_wait(peer_conn_t *c, uint64_t id, const char *aid) {
  peer_respond(c, HCSB_MSG_WAIT_FOR_PROCESS, id, aid[0] ? aid : NULL, 0,
               ",\"ExitCode\":0");
}

/* Every output relay is done: the process has exited.  Its record goes with
 * the first answered wait, as in the real guest. */
static void proc_exited(peer_proc_t *proc) {
  peer_wait_t *w;

  if (proc->relays[0] != NULL) relay_close(proc->relays[0]);
  if (proc->waits == NULL) return;
  for (w = proc->waits; w != NULL; w = w->next)
    answer_wait(proc->conn, w->id, w->activity_id);
  proc_free(proc);
}

void peer_relay_event(peer_relay_t *r, uint32_t events) {
  peer_proc_t *proc = r->proc;
  peer_conn_t *c = proc->conn;
  char scratch[4096];
  ssize_t n = 0;

  if ((events & EPOLLOUT) && r->pending != NULL) {
    while (r->pending_off < r->pending_len) {
      n = write(r->fd, r->pending + r->pending_off,
                r->pending_len - r->pending_off);
      if (n < 0) break;
      r->pending_off += (size_t)n;
    }
    if (r->pending_off == r->pending_len) {
      free(r->pending);
      r->pending = NULL;
      shutdown(r->fd, SHUT_WR);
      peer_epoll_set(c->peer, r->fd, &r->src, EPOLLIN, 0);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      events |= EPOLLERR;
    }
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  n = read(r->fd, scratch, sizeof(scratch));
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
  /* The host closed its end (or the socket failed): this relay is done. */
  relay_close(r);
  if (r->which != 0 && --proc->outputs_open == 0) proc_exited(proc);
  peer_flush(c);
}

static int open_relay(peer_proc_t *proc, int which, uint32_t port) {
  peer_t *p = proc->conn->peer;
  peer_relay_t *r;
  uint32_t events = EPOLLIN;
  ssize_t n;
  int fd = dial(p->stdio_dir, port);

  if (fd < 0) return fd;
  r = calloc(1, sizeof(*r));
  if (r == NULL) {
    close(fd);
    return -ENOMEM;
  }
  r->src.kind = PEER_RELAY;
  r->proc = proc;
  r->fd = fd;
  r->which = which;
  proc->relays[which] = r;
  if (which == 1) {
    r->pending = malloc(p->payload_len);
    if (r->pending == NULL) return -ENOMEM;
    r->pending_len = p->payload_len;
    bench_payload(r->pending, r->pending_len, proc->pid);
    n = write(fd, r->pending, r->pending_len);
    if (n > 0) r->pending_off = (size_t)n;
    if (r->pending_off == r->pending_len) {
      free(r->pending);
      r->pending = NULL;
    } else {
      events |= EPOLLOUT;
    }
  }
  if (which != 0) {
    if (r->pending == NULL) shutdown(fd, SHUT_WR);
    proc->outputs_open++;
  }
  peer_epoll_set(p, fd, &r->src, events, 1);
  return 0;
}

static uint32_t get_u32(json_object *obj, const char *key) {
  json_object *v = obj ? hcsb__json_get(obj, key) : NULL;
  int64_t n = v ? json_object_get_int64(v) : 0;

  return n < 0 || n > UINT32_MAX ? 0 : (uint32_t)n;
}

static int get_bool(json_object *obj, const char *key) {
  json_object *v = obj ? hcsb__json_get(obj, key) : NULL;

  return v != NULL && json_object_get_boolean(v);
}

void peer_exec(peer_conn_t *c, uint64_t id, const uint8_t *body, size_t len) {
  json_object *root = NULL, *settings, *relay, *params = NULL, *ps;
  char aid[40], extra[64], msg[160];
  peer_proc_t *proc;
  int i, err = 0;

  aid[0] = '\0';
  peer_activity_id(body, len, aid, NULL);
  if (hcsb__json_parse((const char *)body, len, &root) != 0) {
    peer_respond(c, HCSB_MSG_EXECUTE_PROCESS, id, aid[0] ? aid : NULL,
                 HCSB_E_VMCOMPUTE_INVALID_JSON,
                 ",\"ErrorMessage\":\"hcsb-fastpeer: bad request JSON\"");
    return;
  }
  settings = hcsb__json_get(root, "Settings");
  relay = settings ? hcsb__json_get(settings, "VsockStdioRelaySettings") : NULL;
  ps = settings ? hcsb__json_get(settings, "ProcessParameters") : NULL;
  if (ps != NULL && json_object_is_type(ps, json_type_string))
    hcsb__json_parse(json_object_get_string(ps),
                     (size_t)json_object_get_string_len(ps), &params);

  proc = calloc(1, sizeof(*proc));
  if (proc == NULL) {
    fprintf(stderr, "hcsb-fastpeer: out of memory\n");
    exit(1);
  }
  proc->conn = c;
  proc->pid = c->peer->next_pid++;
  proc->next = c->procs;
  c->procs = proc;
  /* stdin, then stdout, then stderr, as the guest dials them. */
  for (i = 0; i < 3 && err == 0; i++)
    if (get_bool(params, pipe_keys[i]))
      err = open_relay(proc, i, get_u32(relay, port_keys[i]));
  json_object_put(params);
  json_object_put(root);

  if (err != 0) {
    proc_free(proc);
    snprintf(msg, sizeof(msg),
             ",\"ErrorMessage\":\"hcsb-fastpeer: relay dial failed: %s\"",
             strerror(-err));
    peer_respond(c, HCSB_MSG_EXECUTE_PROCESS, id, aid[0] ? aid : NULL,
                 HCSB_E_FAIL, msg);
    return;
  }
  snprintf(extra, sizeof(extra), ",\"ProcessId\":%u", (unsigned)proc->pid);
  peer_respond(c, HCSB_MSG_EXECUTE_PROCESS, id, aid[0] ? aid : NULL, 0, extra);
  if (proc->outputs_open == 0) proc_exited(proc);
}

void peer_wait(peer_conn_t *c, uint64_t id, const uint8_t *body, size_t len) {
  json_object *root = NULL;
  peer_proc_t *proc;
  peer_wait_t *w;
  uint32_t pid = 0;
  char aid[40];

  aid[0] = '\0';
  peer_activity_id(body, len, aid, NULL);
  if (hcsb__json_parse((const char *)body, len, &root) == 0) {
    pid = get_u32(root, "ProcessId");
    json_object_put(root);
  }
  for (proc = c->procs; proc != NULL && proc->pid != pid; proc = proc->next)
    continue;
  if (proc == NULL) {
    peer_respond(c, HCSB_MSG_WAIT_FOR_PROCESS, id, aid[0] ? aid : NULL,
                 HCSB_E_NOT_FOUND,
                 ",\"ErrorMessage\":\"hcsb-fastpeer: process not found\"");
    return;
  }
  if (proc->outputs_open == 0) {
    answer_wait(c, id, aid);
    proc_free(proc);
    return;
  }
  w = calloc(1, sizeof(*w));
  if (w == NULL) {
    fprintf(stderr, "hcsb-fastpeer: out of memory\n");
    exit(1);
  }
  w->id = id;
  memcpy(w->activity_id, aid, sizeof(aid));
  w->next = proc->waits;
  proc->waits = w;
}

void peer_procs_free(peer_conn_t *c) {
  while (c->procs != NULL) proc_free(c->procs);
}
