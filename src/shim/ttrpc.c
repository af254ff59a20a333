/* ttrpc frames and envelope (ttrpc.h).  No I/O, no libuv. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "shim/ttrpc.h"

/* The reader's first allocation for a payload; it doubles from there as
 * bytes arrive, up to the announced length. */
#define READER_FIRST_CAP 4096u

void hcsb__ttrpc_header_put(uint8_t out[HCSB__TTRPC_HEADER_LEN],
                            const hcsb__ttrpc_header_t *h) {
  out[0] = (uint8_t)(h->length >> 24);
  out[1] = (uint8_t)(h->length >> 16);
  out[2] = (uint8_t)(h->length >> 8);
  out[3] = (uint8_t)h->length;
  out[4] = (uint8_t)(h->stream_id >> 24);
  out[5] = (uint8_t)(h->stream_id >> 16);
  out[6] = (uint8_t)(h->stream_id >> 8);
  out[7] = (uint8_t)h->stream_id;
  out[8] = h->type;
  out[9] = h->flags;
}

void hcsb__ttrpc_header_get(const uint8_t in[HCSB__TTRPC_HEADER_LEN],
                            hcsb__ttrpc_header_t *h) {
  h->length = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
              (uint32_t)in[2] << 8 | in[3];
  h->stream_id = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 |
                 (uint32_t)in[6] << 8 | in[7];
  h->type = in[8];
  h->flags = in[9];
}

/* ------------------------------------------------------------------------ */
/* Reader */

void hcsb__ttrpc_reader_init(hcsb__ttrpc_reader_t *r, size_t max) {
  memset(r, 0, sizeof(*r));
  r->max = max ? max : HCSB__TTRPC_MAX_PAYLOAD;
}

void hcsb__ttrpc_reader_free(hcsb__ttrpc_reader_t *r) {
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
}

/* Room for `want` more payload bytes, within the announced length. */
static int reader_reserve(hcsb__ttrpc_reader_t *r, size_t want) {
  size_t need = r->len + want, cap = r->cap;
  uint8_t *p;

  if (need <= cap) return 0;
  if (cap == 0) cap = READER_FIRST_CAP;
  while (cap < need) cap *= 2;
  if (cap > r->h.length) cap = r->h.length;
  p = realloc(r->buf, cap);
  if (p == NULL) return -ENOMEM;
  r->buf = p;
  r->cap = cap;
  return 0;
}

ssize_t hcsb__ttrpc_reader_feed(hcsb__ttrpc_reader_t *r, const uint8_t *data,
                                size_t len, int *done) {
  size_t used = 0, n;

  *done = 0;
  if (r->failed) return -EPROTO;
  if (r->hdr_len < HCSB__TTRPC_HEADER_LEN) {
    n = HCSB__TTRPC_HEADER_LEN - r->hdr_len;
    if (n > len) n = len;
    memcpy(r->hdr + r->hdr_len, data, n);
    r->hdr_len += n;
    used = n;
    if (r->hdr_len < HCSB__TTRPC_HEADER_LEN) return (ssize_t)used;
    hcsb__ttrpc_header_get(r->hdr, &r->h);
    if (r->h.length > r->max) {
      r->failed = 1;
      return -EMSGSIZE;
    }
  }
  n = r->h.length - r->len;
  if (n > len - used) n = len - used;
  if (n > 0) {
    if (reader_reserve(r, n) < 0) {
      r->failed = 1;
      return -ENOMEM;
    }
    memcpy(r->buf + r->len, data + used, n);
    r->len += n;
    used += n;
  }
  if (r->len == r->h.length) *done = 1;
  return (ssize_t)used;
}

uint8_t *hcsb__ttrpc_reader_take(hcsb__ttrpc_reader_t *r, size_t *len) {
  uint8_t *p = r->buf;

  *len = r->len;
  if (r->len == 0) {
    free(p);
    p = NULL;
  }
  r->buf = NULL;
  r->len = r->cap = 0;
  r->hdr_len = 0;
  return p;
}

/* ------------------------------------------------------------------------ */
/* Budget allocator: each block carries its size in front, so frees can be
 * counted back. */

typedef union block_head {
  size_t size;
  max_align_t align;
} block_head_t;

static void *budget_alloc(void *data, size_t size) {
  hcsb__pb_budget_t *b = data;
  block_head_t *h;
  size_t total;

  if (size > b->limit || b->limit - size < sizeof(*h) ||
      b->used > b->limit - size - sizeof(*h)) {
    b->over = 1;
    return NULL;
  }
  total = size + sizeof(*h);
  h = malloc(total);
  if (h == NULL) {
    b->failed = 1;
    return NULL;
  }
  h->size = total;
  b->used += total;
  return h + 1;
}

static void budget_free(void *data, void *p) {
  hcsb__pb_budget_t *b = data;
  block_head_t *h;

  if (p == NULL) return;
  h = (block_head_t *)p - 1;
  b->used -= h->size;
  free(h);
}

void hcsb__pb_budget_init(hcsb__pb_budget_t *b, size_t limit) {
  memset(b, 0, sizeof(*b));
  b->limit = limit ? limit : HCSB__TTRPC_UNPACK_BUDGET;
  b->allocator.alloc = budget_alloc;
  b->allocator.free = budget_free;
  b->allocator.allocator_data = b;
}

int hcsb__pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                    size_t n, hcsb__pb_budget_t *b, ProtobufCMessage **out) {
  ProtobufCMessage *m;

  b->over = b->failed = 0;
  /* protobuf-c reads nothing from p when n is 0, but wants a pointer. */
  m = protobuf_c_message_unpack(desc, &b->allocator, n,
                                p != NULL ? p : (const uint8_t *)"");
  if (m != NULL) {
    *out = m;
    return 0;
  }
  *out = NULL;
  if (b->failed) return -ENOMEM;
  if (b->over) return -E2BIG;
  return -EPROTO;
}

int hcsb__ttrpc_request_unpack(const uint8_t *p, size_t n, hcsb__pb_budget_t *b,
                               Ttrpc__Request **out) {
  return hcsb__pb_unpack(&ttrpc__request__descriptor, p, n, b,
                         (ProtobufCMessage **)out);
}

int hcsb__ttrpc_response_unpack(const uint8_t *p, size_t n,
                                hcsb__pb_budget_t *b, Ttrpc__Response **out) {
  return hcsb__pb_unpack(&ttrpc__response__descriptor, p, n, b,
                         (ProtobufCMessage **)out);
}

/* ------------------------------------------------------------------------ */
/* Frame builders */

/* `msg` packed into a fresh buffer (NULL, 0 for no message). */
static int pack_inner(const ProtobufCMessage *msg, ProtobufCBinaryData *out) {
  size_t n;

  out->data = NULL;
  out->len = 0;
  if (msg == NULL) return 0;
  n = protobuf_c_message_get_packed_size(msg);
  if (n > HCSB__TTRPC_MAX_PAYLOAD) return -EMSGSIZE;
  if (n == 0) return 0;
  out->data = malloc(n);
  if (out->data == NULL) return -ENOMEM;
  out->len = protobuf_c_message_pack(msg, out->data);
  return 0;
}

/* Header plus `env` packed, in one buffer. */
static int frame(uint32_t stream_id, uint8_t type, const ProtobufCMessage *env,
                 uint8_t **out, size_t *out_len) {
  hcsb__ttrpc_header_t h;
  size_t n = protobuf_c_message_get_packed_size(env);
  uint8_t *buf;

  if (n > HCSB__TTRPC_MAX_PAYLOAD) return -EMSGSIZE;
  buf = malloc(HCSB__TTRPC_HEADER_LEN + n);
  if (buf == NULL) return -ENOMEM;
  h.length = (uint32_t)n;
  h.stream_id = stream_id;
  h.type = type;
  h.flags = 0;
  hcsb__ttrpc_header_put(buf, &h);
  protobuf_c_message_pack(env, buf + HCSB__TTRPC_HEADER_LEN);
  *out = buf;
  *out_len = HCSB__TTRPC_HEADER_LEN + n;
  return 0;
}

int hcsb__ttrpc_response_frame(uint32_t stream_id, int32_t code,
                               const char *message, const ProtobufCMessage *msg,
                               uint8_t **out, size_t *out_len) {
  Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
  Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
  int r;

  status.code = code;
  if (message != NULL) status.message = (char *)message;
  /* Always sent, as ttrpc does: an OK status is an empty Status. */
  resp.status = &status;
  r = pack_inner(msg, &resp.payload);
  if (r < 0) return r;
  r = frame(stream_id, HCSB__TTRPC_TYPE_RESPONSE, &resp.base, out, out_len);
  free(resp.payload.data);
  return r;
}

int hcsb__ttrpc_request_frame(uint32_t stream_id, const char *service,
                              const char *method, const ProtobufCMessage *msg,
                              int64_t timeout_ns, const char *const *md,
                              size_t nmd, uint8_t **out, size_t *out_len) {
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  Ttrpc__KeyValue kv[8], *kvp[8];
  size_t i;
  int r;

  if (nmd > 8) return -EINVAL;
  for (i = 0; i < nmd; i++) {
    ttrpc__key_value__init(&kv[i]);
    kv[i].key = (char *)md[2 * i];
    kv[i].value = (char *)md[2 * i + 1];
    kvp[i] = &kv[i];
  }
  req.service = (char *)service;
  req.method = (char *)method;
  req.timeout_nano = timeout_ns;
  req.n_metadata = nmd;
  req.metadata = nmd ? kvp : NULL;
  r = pack_inner(msg, &req.payload);
  if (r < 0) return r;
  r = frame(stream_id, HCSB__TTRPC_TYPE_REQUEST, &req.base, out, out_len);
  free(req.payload.data);
  return r;
}
