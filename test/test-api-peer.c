/* The scripted guest used by the API tests. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hcsbridge/bridge.h>

#include "runner.h"
#include "test-api-peer.h"

static const char negotiate_body[] =
    "{\"Result\":0,\"ActivityId\":\"00000000-0000-0000-0000-000000000000\","
    "\"Version\":4,\"Capabilities\":{\"SupportedSchemaVersions\":[{\"Major\":2,"
    "\"Minor\":1}],\"RuntimeOsType\":\"Linux\",\"GuestDefinedCapabilities\":{"
    "\"NamespaceAddRequestSupported\":true,\"SignalProcessSupported\":true,"
    "\"DumpStacksSupported\":true,\"DeleteContainerStateSupported\":true}}}";

typedef struct wreq_s {
  uv_write_t req;
  char data[];
} wreq_t;

static void written(uv_write_t *req, int status) {
  free(req);
}

static void send_frame(api_peer_t *p, uint32_t type, uint64_t id,
                       const char *body) {
  size_t n = strlen(body);
  wreq_t *w = malloc(sizeof(*w) + HCSB__HDR_SIZE + n);
  hcsb__hdr_t h = {type, (uint32_t)(HCSB__HDR_SIZE + n), id};
  uv_buf_t buf;

  CHECK(w != NULL);
  hcsb__hdr_encode((uint8_t *)w->data, &h);
  memcpy(w->data + HCSB__HDR_SIZE, body, n);
  buf = uv_buf_init(w->data, (unsigned)(HCSB__HDR_SIZE + n));
  CHECK_EQ(uv_write(&w->req, (uv_stream_t *)&p->pipe, &buf, 1, written), 0);
}

void api_peer_reply(api_peer_t *p, uint32_t request_type, uint64_t id,
                    const char *body) {
  send_frame(p, hcsb_msg_response_type(request_type), id, body);
}

void api_peer_ok(api_peer_t *p, uint32_t request_type, uint64_t id) {
  api_peer_reply(p, request_type, id,
                 "{\"Result\":0,\"ActivityId\":"
                 "\"00000000-0000-0000-0000-000000000000\"}");
}

void api_peer_notify(api_peer_t *p, const char *body) {
  send_frame(p, HCSB_MSG_NOTIFY_CONTAINER, 0, body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  api_peer_t *p = h->data;
  *buf = uv_buf_init(p->rbuf, sizeof p->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  api_peer_t *p = s->data;
  const uint8_t *data = (const uint8_t *)buf->base;
  size_t len, used;
  hcsb__frame_t f;

  if (nread < 0) {
    p->eof = 1;
    uv_read_stop(s);
    return;
  }
  len = (size_t)nread;
  while (len > 0) {
    hcsb__dec_event_t ev = hcsb__decoder_feed(&p->dec, data, len, &used, &f);
    data += used;
    len -= used;
    CHECK(ev >= 0);
    if (ev != HCSB__DEC_FRAME) continue;
    p->nrequests++;
    if (f.hdr.type == HCSB_MSG_NEGOTIATE_PROTOCOL && !p->raw_negotiate)
      api_peer_reply(p, f.hdr.type, f.hdr.id, negotiate_body);
    else if (p->on_req != NULL)
      p->on_req(p, f.hdr.type, f.hdr.id, (const char *)f.body, f.body_len);
  }
}

void api_peer_start(api_peer_t *p, uv_loop_t *loop, int fd, api_peer_req_cb cb,
                    void *data) {
  memset(p, 0, sizeof(*p));
  p->loop = loop;
  p->on_req = cb;
  p->data = data;
  hcsb__decoder_init(&p->dec, HCSB_DEFAULT_MAX_FRAME);
  CHECK_EQ(uv_pipe_init(loop, &p->pipe, 0), 0);
  CHECK_EQ(uv_pipe_open(&p->pipe, fd), 0);
  p->pipe.data = p;
  CHECK_EQ(uv_read_start((uv_stream_t *)&p->pipe, on_alloc, on_read), 0);
}

static void peer_closed(uv_handle_t *h) {
  ((api_peer_t *)h->data)->closed = 1;
}

void api_peer_close(api_peer_t *p) {
  hcsb__decoder_free(&p->dec);
  uv_close((uv_handle_t *)&p->pipe, peer_closed);
}

static void ignore_ready(void *data, hcsb_bridge_t *b, int status,
                         const hcsb_guest_error_t *gerr) {
  if (data != NULL) *(int *)data = status == 0 ? 1 : status;
}

void api_peer_pair(api_peer_t *p, uv_loop_t *loop, api_peer_req_cb cb,
                   void *data, hcsb_bridge_t **bridge) {
  int sv[2];

  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  api_peer_start(p, loop, sv[1], cb, data);
  CHECK_EQ(hcsb_bridge_new(loop, bridge), 0);
  CHECK_EQ(hcsb_bridge_open_fd(*bridge, sv[0], ignore_ready, NULL), 0);
}
