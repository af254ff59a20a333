/* containerd-shim-hcsb-v1 — ttrpc on the wire, without I/O.
 *
 * Frames, the incremental frame reader, and the Request/Response envelope
 * (src/shim/proto/ttrpc.proto), as containerd's ttrpc 1.1 has them:
 *
 *   length u32 BE | stream id u32 BE | type u8 | flags u8 | payload
 *
 * `length` counts the payload only and is at most 4 MiB.  A request
 * (type 1) carries a ttrpc.Request, a response (type 2) a ttrpc.Response.
 * Clients use odd stream ids.
 *
 * Everything a peer sends is bounded: the reader grows its buffer only as
 * bytes arrive (a header announcing 4 MiB costs nothing until they do),
 * and every protobuf unpack goes through a budget allocator that fails the
 * unpack once HCSB__TTRPC_UNPACK_BUDGET bytes would be live (protobuf-c
 * would otherwise turn 4 MiB of two-byte repeated entries into hundreds of
 * megabytes of structs).
 */
#ifndef HCSB_SHIM_TTRPC_H
#define HCSB_SHIM_TTRPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "ttrpc.pb-c.h"

#define HCSB__TTRPC_HEADER_LEN 10
#define HCSB__TTRPC_MAX_PAYLOAD (4u << 20)
#define HCSB__TTRPC_TYPE_REQUEST 1
#define HCSB__TTRPC_TYPE_RESPONSE 2
/* Bytes one unpack (envelope and inner message together) may hold. */
#define HCSB__TTRPC_UNPACK_BUDGET (16u << 20)

typedef struct hcsb__ttrpc_header_s {
  uint32_t length; /* payload bytes */
  uint32_t stream_id;
  uint8_t type;
  uint8_t flags;
} hcsb__ttrpc_header_t;

void hcsb__ttrpc_header_put(uint8_t out[HCSB__TTRPC_HEADER_LEN],
                            const hcsb__ttrpc_header_t *h);
void hcsb__ttrpc_header_get(const uint8_t in[HCSB__TTRPC_HEADER_LEN],
                            hcsb__ttrpc_header_t *h);

/* ------------------------------------------------------------------------ */
/* The frame reader: bytes in, whole frames out, however reads split or
 * merge them. */

typedef struct hcsb__ttrpc_reader_s {
  size_t max;                          /* payload limit */
  uint8_t hdr[HCSB__TTRPC_HEADER_LEN]; /* header bytes so far */
  size_t hdr_len;
  hcsb__ttrpc_header_t h; /* the current frame's header, once complete */
  uint8_t *buf;           /* its payload so far */
  size_t len, cap;
  int failed;
} hcsb__ttrpc_reader_t;

/* `max` = 0 means HCSB__TTRPC_MAX_PAYLOAD. */
void hcsb__ttrpc_reader_init(hcsb__ttrpc_reader_t *r, size_t max);
void hcsb__ttrpc_reader_free(hcsb__ttrpc_reader_t *r);

/* Takes bytes from data[0..len) until a frame is complete or they are used
 * up, and returns how many it took.  When a frame is complete *done is 1:
 * r->h is its header and hcsb__ttrpc_reader_take() hands over its payload;
 * call feed again with the rest.  Otherwise *done is 0 and every byte was
 * taken.  Errors (the reader is then unusable, and r->h holds the
 * offending header):
 *   -EMSGSIZE  the header announces more than `max` payload bytes
 *   -ENOMEM */
ssize_t hcsb__ttrpc_reader_feed(hcsb__ttrpc_reader_t *r, const uint8_t *data,
                                size_t len, int *done);

/* The payload of the frame feed just completed (malloc'd, the caller's to
 * free; NULL with *len 0 for an empty payload), and the reader set for the
 * next frame. */
uint8_t *hcsb__ttrpc_reader_take(hcsb__ttrpc_reader_t *r, size_t *len);

/* Bytes of a frame in progress (0 between frames). */
static inline size_t hcsb__ttrpc_reader_pending(const hcsb__ttrpc_reader_t *r) {
  return r->hdr_len + r->len;
}

/* ------------------------------------------------------------------------ */
/* Bounded protobuf-c allocation. */

typedef struct hcsb__pb_budget_s {
  ProtobufCAllocator allocator; /* pass &b->allocator to protobuf-c */
  size_t used, limit;
  int over;   /* an allocation was refused for the limit */
  int failed; /* malloc itself failed */
} hcsb__pb_budget_t;

/* `limit` = 0 means HCSB__TTRPC_UNPACK_BUDGET.  Everything allocated
 * through one budget must be freed through it. */
void hcsb__pb_budget_init(hcsb__pb_budget_t *b, size_t limit);

/* Unpacks `desc` from p[0..n) within budget `b`.  0 and *out (free with
 * protobuf_c_message_free_unpacked(*out, &b->allocator)); -EPROTO (not
 * that message), -E2BIG (over the budget), -ENOMEM. */
int hcsb__pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                    size_t n, hcsb__pb_budget_t *b, ProtobufCMessage **out);

/* ------------------------------------------------------------------------ */
/* The envelope. */

/* A Request from a request frame's payload; errors as hcsb__pb_unpack. */
int hcsb__ttrpc_request_unpack(const uint8_t *p, size_t n, hcsb__pb_budget_t *b,
                               Ttrpc__Request **out);
/* A Response from a response frame's payload; errors as hcsb__pb_unpack. */
int hcsb__ttrpc_response_unpack(const uint8_t *p, size_t n,
                                hcsb__pb_budget_t *b, Ttrpc__Response **out);

/* One whole response frame (header and Response) in a fresh malloc'd
 * buffer: status `code` with `message` (NULL = none) and, when `msg` is
 * not NULL, msg packed as the payload.  0; -EMSGSIZE (the payload would
 * exceed HCSB__TTRPC_MAX_PAYLOAD); -ENOMEM. */
int hcsb__ttrpc_response_frame(uint32_t stream_id, int32_t code,
                               const char *message, const ProtobufCMessage *msg,
                               uint8_t **out, size_t *out_len);

/* One whole request frame: `service`/`method`, `msg` packed as the payload
 * (NULL = empty), `timeout_ns` (0 = none) and `nmd` metadata pairs
 * (md[2i] key, md[2i+1] value), at most 8.  Errors as
 * hcsb__ttrpc_response_frame, and -EINVAL for more than 8 pairs. */
int hcsb__ttrpc_request_frame(uint32_t stream_id, const char *service,
                              const char *method, const ProtobufCMessage *msg,
                              int64_t timeout_ns, const char *const *md,
                              size_t nmd, uint8_t **out, size_t *out_len);

#endif /* HCSB_SHIM_TTRPC_H */
