/* A scripted guest for the bridge tests: a thread doing blocking I/O on its
 * end of a socket, speaking the real framing.  A script is plain sequential
 * code ("read a request, check it, answer"), so each test states exactly
 * what the guest does and in which order.  CHECK failures in the thread
 * abort the (forked) test, which the runner reports. */
#ifndef HCSB_TEST_BRIDGE_PEER_H
#define HCSB_TEST_BRIDGE_PEER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <hcsbridge/bridge.h>

#include "runner.h"

typedef struct peer_s peer_t;
typedef void (*peer_script_fn)(peer_t *p);

struct peer_s {
  int fd;
  pthread_t thread;
  peer_script_fn script;
  void *arg;
  int started;
  int gate[2]; /* the test opens it to let the script go on */
};

typedef struct pframe_s {
  uint32_t type;
  uint32_t size;
  uint64_t id;
  char *body; /* NUL-terminated copy */
  size_t len;
} pframe_t;

/* Runs `script` in a thread on `fd` (the thread closes it when done). */
void peer_start(peer_t *p, int fd, peer_script_fn script, void *arg);
void peer_join(peer_t *p);

/* Reads one frame; 0, or -1 on EOF/error before a whole frame. */
int peer_read(peer_t *p, pframe_t *f);
/* Reads one frame and checks its type; returns its ID. */
uint64_t peer_expect(peer_t *p, uint32_t type);
void pframe_free(pframe_t *f);
/* 1 when nothing arrives within `ms`. */
int peer_quiet(peer_t *p, int ms);
/* Reads until EOF (the bridge closed); returns the frames swallowed. */
int peer_drain(peer_t *p);

void peer_send(peer_t *p, uint32_t type, uint64_t id, const char *body);
void peer_send_raw(peer_t *p, const void *buf, size_t len);
/* Appends a frame to `out` (for sending several in one write). */
size_t peer_frame(char *out, uint32_t type, uint64_t id, const char *body);

/* Blocks the script until the test calls peer_open_gate(). */
void peer_wait_gate(peer_t *p);
void peer_open_gate(peer_t *p);

/* Answers NegotiateProtocol (which must be the first frame, ID 1) with the
 * Linux GCS's reply (protocol.md §6.1). */
void peer_negotiate(peer_t *p);

#define PEER_NEGOTIATE_BODY                                                    \
  "{\"Result\":0,\"ActivityId\":\"00000000-0000-0000-0000-000000000000\","     \
  "\"Version\":4,\"Capabilities\":{\"SupportedSchemaVersions\":[{\"Major\":2," \
  "\"Minor\":1}],\"RuntimeOsType\":\"Linux\",\"GuestDefinedCapabilities\":{"   \
  "\"NamespaceAddRequestSupported\":true,\"SignalProcessSupported\":true,"     \
  "\"DumpStacksSupported\":true,\"DeleteContainerStateSupported\":true}}}"

#define PEER_OK_BODY \
  "{\"Result\":0,\"ActivityId\":\"00000000-0000-0000-0000-000000000000\"}"

/* ------------------------------------------------------------------------ */
/* The fixture: a loop, a bridge on one end of a socketpair, a peer on the
 * other, and a watchdog so a hang fails fast with a message. */

typedef struct fx_s fx_t;

struct fx_s {
  uv_loop_t loop;
  hcsb_bridge_t *b;
  peer_t peer;
  uv_timer_t watchdog;
  int ready_n, ready_status;
  uint32_t ready_hresult;
  void (*on_ready)(fx_t *fx, int status);
  int closed_n;
  int disconnect_n, disconnect_status;
  int notify_n;
  char notify_cid[64];
  hcsb_notification_type_t notify_kind;
  void (*on_notify)(fx_t *fx);
  int log_n;
  char log_match[64];    /* count log lines containing this ... */
  char log_activity[40]; /* ... and remember their ActivityId */
  int log_match_n;
  void *arg;
};

/* Opens a bridge with hcsb_bridge_open_fd() and starts `script`. */
void fx_open(fx_t *fx, peer_script_fn script, void *arg);
/* Prepares everything but does not open (for tests of the NEW phase);
 * returns the bridge's end of the socketpair. */
int fx_init(fx_t *fx, peer_script_fn script, void *arg);
/* Loop, bridge, callbacks and watchdog; no peer, not opened. */
void fx_setup(fx_t *fx, void *arg);
/* hcsb_bridge_connect() with the fixture's ready callback. */
int fx_connect(fx_t *fx, const char *address);
/* Opens the bridge from fx_init() on `fd`. */
void fx_open_fd(fx_t *fx, int fd);
/* Runs `loop` until *counter >= value, and no further. */
void run_loop_until(uv_loop_t *loop, const int *counter, int value);
/* Runs the loop until *counter >= value. */
void fx_run_until(fx_t *fx, const int *counter, int value);
/* Closes the bridge (if `close`), waits for close_cb, the peer, the loop. */
void fx_finish(fx_t *fx, int close);

/* Library calls made by tests go through these, so callbacks can check they
 * never run inside the call that started them. */
extern int in_api;
int api_call(hcsb_bridge_t *b, const hcsb_request_t *req, uint32_t timeout_ms,
             hcsb_call_cb cb, void *data, hcsb_call_t **callp);
int api_cancel(hcsb_call_t *c);
void api_close(fx_t *fx);

/* What a call's callback saw. */
typedef struct rec_s rec_t;
struct rec_s {
  int n;
  int status;
  int order; /* completion order across all recs */
  uint64_t id;
  uint32_t type, result, pid;
  uint32_t hresult;
  size_t nrecords;
  char msg[128];
  void (*then)(rec_t *r);
  void *arg;
};
void rec_cb(void *data, int status, const hcsb_guest_error_t *gerr,
            const hcsb_response_t *resp);

/* Requests: Start on container `cid`; ExecuteProcess with an empty body. */
hcsb_request_t req_start(const char *cid);
hcsb_request_t req_exec(void);

#endif /* HCSB_TEST_BRIDGE_PEER_H */
