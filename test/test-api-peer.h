/* A scripted guest for API tests: the other end of a socketpair, in the
 * same loop, answering requests with whatever the test says (crafted
 * properties, stray notifications, silence). */
#ifndef HCSB_TEST_API_PEER_H
#define HCSB_TEST_API_PEER_H

#include <uv.h>

#include "proto/proto.h"

typedef struct api_peer_s api_peer_t;

/* A request arrived; `body` is valid during the call.  Negotiation is
 * answered by the peer itself unless `raw_negotiate` is set. */
typedef void (*api_peer_req_cb)(api_peer_t *p, uint32_t type, uint64_t id,
                                const char *body, size_t len);

struct api_peer_s {
  uv_loop_t *loop;
  uv_pipe_t pipe;
  hcsb__decoder_t dec;
  api_peer_req_cb on_req;
  void *data;
  int raw_negotiate;
  int eof;
  int closed;
  unsigned nrequests;
  char rbuf[65536];
};

/* Starts the peer on `fd` (one end of a socketpair; the peer owns it). */
void api_peer_start(api_peer_t *p, uv_loop_t *loop, int fd, api_peer_req_cb cb,
                    void *data);
/* Sends a response of the request type's response identifier. */
void api_peer_reply(api_peer_t *p, uint32_t request_type, uint64_t id,
                    const char *body);
/* Sends a container notification (0x30100101, ID 0). */
void api_peer_notify(api_peer_t *p, const char *body);
/* "{"Result":0,...}" answers. */
void api_peer_ok(api_peer_t *p, uint32_t request_type, uint64_t id);
void api_peer_close(api_peer_t *p);

/* Makes a connected bridge + peer pair: *bridge negotiates with the peer
 * (not yet done on return). */
void api_peer_pair(api_peer_t *p, uv_loop_t *loop, api_peer_req_cb cb,
                   void *data, hcsb_bridge_t **bridge);

#endif
