/* hcsb-fastpeer internals: a single-threaded epoll peer that answers the
 * bridge protocol as fast as it can (see fastpeer.c), and emulates just
 * enough of ExecuteProcess/WaitForProcess with stdio relays
 * (fastpeer-proc.c) for the fan-out measurement. */
#ifndef HCSB_BENCH_FASTPEER_H
#define HCSB_BENCH_FASTPEER_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* Everything registered with epoll starts with one of these. */
typedef enum peer_kind_e {
  PEER_LISTENER = 1,
  PEER_CONN_IN,
  PEER_CONN_OUT,
  PEER_RELAY
} peer_kind_t;

typedef struct peer_src_s {
  peer_kind_t kind;
  int dead; /* closed; its memory goes after the current epoll batch */
} peer_src_t;

typedef struct peer_s {
  int epfd;
  int never_answer;
  int stdio_mode;        /* serving stdin/stdout: exit when it ends */
  const char *stdio_dir; /* where relay sockets live */
  size_t payload_len;
  uint32_t next_pid;
  uint64_t fail_every; /* answer every Nth GetProperties with E_FAIL */
  uint64_t properties_seen;
  const char *record; /* append each connection's first GetProperties body */
  void **grave;       /* closed objects, freed once no event can name them */
  size_t ngrave, grave_cap;
} peer_t;

typedef struct peer_proc_s peer_proc_t;

typedef struct peer_conn_s {
  peer_src_t in_src;
  peer_src_t out_src;
  peer_t *peer;
  int rfd, wfd;
  int in_armed, out_armed;
  int recorded;
  size_t aid_hint; /* where the last request's "ActivityId" key was */
  hcsb__decoder_t dec;
  hcsb__buf_t out;
  size_t out_off;
  peer_proc_t *procs;
} peer_conn_t;

/* Relay of one stdio stream: the peer dialled the host's listener. */
typedef struct peer_relay_s {
  peer_src_t src;
  peer_proc_t *proc;
  int fd;
  int which;     /* 0 stdin, 1 stdout, 2 stderr */
  char *pending; /* stdout payload not yet written */
  size_t pending_len, pending_off;
} peer_relay_t;

typedef struct peer_wait_s {
  struct peer_wait_s *next;
  uint64_t id;
  char activity_id[40];
} peer_wait_t;

struct peer_proc_s {
  peer_proc_t *next;
  peer_conn_t *conn;
  uint32_t pid;
  int outputs_open; /* stdout/stderr relays the host has not closed yet */
  peer_relay_t *relays[3];
  peer_wait_t *waits;
};

/* fastpeer.c */
void peer_respond(peer_conn_t *c, uint32_t req_type, uint64_t id,
                  const char *aid, uint32_t result, const char *extra);
void peer_flush(peer_conn_t *c);
void peer_bury(peer_t *p, void *obj);
void peer_epoll_set(peer_t *p, int fd, peer_src_t *src, uint32_t events,
                    int add);
size_t peer_activity_id(const uint8_t *body, size_t len, char out[40],
                        size_t *hint);

/* fastpeer-proc.c */
void peer_exec(peer_conn_t *c, uint64_t id, const uint8_t *body, size_t len);
void peer_wait(peer_conn_t *c, uint64_t id, const uint8_t *body, size_t len);
void peer_relay_event(peer_relay_t *r, uint32_t events);
void peer_procs_free(peer_conn_t *c);

#endif
