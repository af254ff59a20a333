/* Protocol core with no I/O: framing, the incremental frame decoder, request
 * encoding and response/notification decoding.  Never includes <uv.h>.
 *
 * Shared by the library (src/bridge, src/api), the guest emulator
 * (src/guest) and the fuzz targets.  Internal: names use the hcsb__ prefix.
 */
#ifndef HCSB_PROTO_H
#define HCSB_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include <hcsbridge/common.h>

#include <hcsbridge/messages.h>

/* ------------------------------------------------------------------------ */
/* Growable byte buffer */

typedef struct hcsb__buf_s {
  char *data;
  size_t len;
  size_t cap;
} hcsb__buf_t;

#define HCSB__BUF_INIT \
  { NULL, 0, 0 }

/* Makes room for `extra` more bytes.  0 or -ENOMEM (buffer unchanged).
 * Inline: most calls find room already (hcsb__buf_grow does the rest). */
int hcsb__buf_grow(hcsb__buf_t *b, size_t extra);
static inline int hcsb__buf_reserve(hcsb__buf_t *b, size_t extra) {
  return extra <= b->cap - b->len ? 0 : hcsb__buf_grow(b, extra);
}
int hcsb__buf_append(hcsb__buf_t *b, const void *p, size_t n);
void hcsb__buf_free(hcsb__buf_t *b);

/* ------------------------------------------------------------------------ */
/* Header: 16 bytes little-endian: Type u32, Size u32 (incl. header), ID u64 */

#define HCSB__HDR_SIZE 16u

typedef struct hcsb__hdr_s {
  uint32_t type;
  uint32_t size;
  uint64_t id;
} hcsb__hdr_t;

void hcsb__hdr_encode(uint8_t out[16], const hcsb__hdr_t *h);
/* Inline: once per frame received. */
static inline uint32_t hcsb__get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline void hcsb__hdr_decode(const uint8_t in[16], hcsb__hdr_t *h) {
  h->type = hcsb__get_le32(in);
  h->size = hcsb__get_le32(in + 4);
  h->id = (uint64_t)hcsb__get_le32(in + 8) | (uint64_t)hcsb__get_le32(in + 12)
                                                 << 32;
}

/* ------------------------------------------------------------------------ */
/* Incremental frame decoder
 *
 * Feed any chunks (one byte at a time works).  Each call consumes input until
 * it has one event to report or the input is used up.  Frames no larger than
 * max_frame are returned whole; the body pointer may point into `data`
 * (zero-copy when the frame lies inside the chunk) or into the decoder's own
 * buffer, and is valid until the next call.  A frame larger than max_frame is
 * reported as HCSB__DEC_OVERSIZE with its header as soon as the header is
 * known; its body is then skipped as it streams past, never buffered.  The
 * buffer grows with the bytes actually received, never with the declared
 * size.  Size < 16 is a stream error (sticky: the stream can no longer be
 * trusted).
 */

typedef enum hcsb__dec_event_e {
  HCSB__DEC_NOMEM = -2,    /* buffering a body failed; not sticky: the input
                              from *consumed on was not used */
  HCSB__DEC_ERROR = -1,    /* Size < 16; sticky */
  HCSB__DEC_NEED_MORE = 0, /* all input consumed, no event */
  HCSB__DEC_FRAME = 1,
  HCSB__DEC_OVERSIZE = 2
} hcsb__dec_event_t;

typedef struct hcsb__frame_s {
  hcsb__hdr_t hdr;
  const uint8_t *body; /* NULL for OVERSIZE */
  size_t body_len;     /* hdr.size - 16 for FRAME */
} hcsb__frame_t;

typedef struct hcsb__decoder_s {
  uint32_t max_frame;
  int state;
  uint8_t hdr_buf[HCSB__HDR_SIZE];
  size_t hdr_have;
  hcsb__hdr_t hdr;
  uint8_t *buf;
  size_t buf_cap;
  size_t body_have;
  uint64_t skip_left;
} hcsb__decoder_t;

void hcsb__decoder_init(hcsb__decoder_t *d, uint32_t max_frame);
void hcsb__decoder_set_max(hcsb__decoder_t *d, uint32_t max_frame);
void hcsb__decoder_free(hcsb__decoder_t *d);
/* Returns the event; *consumed is how many bytes of data were used. */
hcsb__dec_event_t hcsb__decoder_feed(hcsb__decoder_t *d, const uint8_t *data,
                                     size_t len, size_t *consumed,
                                     hcsb__frame_t *frame);
/* 1 when the decoder sits between frames (no partial frame buffered). */
int hcsb__decoder_idle(const hcsb__decoder_t *d);
/* The state between frames, and the body buffer an idle decoder keeps. */
#define HCSB__DEC_ST_HDR 0
#define HCSB__DEC_KEEP_BUF (64u * 1024u)
/* hcsb__decoder_feed's common case, inline (once per frame received): the
 * decoder sits between frames and `data` starts with a whole frame that
 * has a body within the limit.  1 with `frame` and *consumed set (the
 * event is HCSB__DEC_FRAME), or 0, having changed nothing: feed it. */
static inline int hcsb__decoder_whole(const hcsb__decoder_t *d,
                                      const uint8_t *data, size_t len,
                                      size_t *consumed, hcsb__frame_t *frame) {
  if (d->state != HCSB__DEC_ST_HDR || d->hdr_have != 0 ||
      d->buf_cap > HCSB__DEC_KEEP_BUF || len < HCSB__HDR_SIZE)
    return 0;
  uint32_t size = hcsb__get_le32(data + 4);
  if (size <= HCSB__HDR_SIZE || size > d->max_frame || size > len) return 0;
  hcsb__hdr_decode(data, &frame->hdr);
  frame->body = data + HCSB__HDR_SIZE;
  frame->body_len = size - HCSB__HDR_SIZE;
  *consumed = size;
  return 1;
}

/* ------------------------------------------------------------------------ */
/* JSON helpers (json-c) */

/* Maximum nesting of arrays/objects accepted from the guest. */
#define HCSB__JSON_MAX_DEPTH 64

/* Checks that `len` bytes are exactly one JSON value (RFC 8259, as strict as
 * Go's encoding/json: no single quotes, NaN, comments or trailing commas),
 * surrounding whitespace allowed, strings valid UTF-8, at most `max_depth`
 * nested arrays/objects (capped at 1024).  Never allocates or recurses.
 * Returns the value's json_type (json_type_double for any number), or
 * -EPROTO. */
int hcsb__json_validate(const char *s, size_t len, unsigned max_depth);

/* The validator's pieces, for readers that walk JSON text themselves and
 * must be exactly as strict (src/api/jscan.h).  hcsb__json_scan_string:
 * `p` just past an opening quote; returns the position past the closing
 * quote, or NULL when the string is not valid (escapes, control bytes,
 * UTF-8).  hcsb__json_value_end: one value from `p` (leading whitespace
 * allowed) nested at most `max_depth` deep; the position just past it, or
 * NULL. */
const char *hcsb__json_scan_string(const char *p, const char *end);
const char *hcsb__json_value_end(const char *p, const char *end,
                                 unsigned max_depth);

/* Parses exactly `len` bytes (trailing whitespace allowed) as one JSON value
 * with bounded depth.  The text is checked with hcsb__json_validate() first,
 * so invalid UTF-8 is rejected (Go's guest never produces it).  Returns 0,
 * -EPROTO, or -ENOMEM; *out must be json_object_put (NULL for a JSON null,
 * which is how json-c represents it). */
int hcsb__json_parse(const char *s, size_t len, json_object **out);
/* A tokener set up for hcsb__json_parse_tok (depth limit, strict mode). */
json_tokener *hcsb__json_tokener_new(void);
/* The same with a caller-owned tokener (reset before use; for hot paths). */
int hcsb__json_parse_tok(json_tokener *tok, const char *s, size_t len,
                         json_object **out);
/* Case-insensitive member lookup (Go's decoder matches keys that way);
 * exact match preferred.  NULL when absent or JSON null. */
json_object *hcsb__json_get(json_object *obj, const char *key);
/* Compact serialisation without slash escaping (caller must not free). */
const char *hcsb__json_compact(json_object *obj, size_t *len);

/* Appends `s` (n bytes) as a quoted JSON string: `"`, `\\` and control
 * characters escaped, well-formed UTF-8 passed through, U+2028/U+2029
 * escaped and invalid UTF-8 bytes replaced by \ufffd (as Go does).
 * 0 or -ENOMEM (buffer unchanged). */
int hcsb__json_put_string(hcsb__buf_t *out, const char *s, size_t n);

/* ------------------------------------------------------------------------ */
/* Requests (host -> guest) */

/* ------------------------------------------------------------------------ */
/* OpenCensus span context pieces (spanctx.c) */

#define HCSB__TRACESTATE_MAX_ENTRIES 32u
#define HCSB__TRACESTATE_MAX_KEY 256u
#define HCSB__TRACESTATE_MAX_VALUE 256u

/* 1 when go.opencensus.io's tracestate accepts the key / value. */
int hcsb__tracestate_key_ok(const char *k, size_t n);
int hcsb__tracestate_value_ok(const char *v, size_t n);
/* Standard base64 with padding, appended to `b`.  0 or -ENOMEM. */
int hcsb__base64_put(hcsb__buf_t *b, const void *data, size_t n);
/* Appends the decoded bytes.  0, -EINVAL (not base64), -ENOMEM. */
int hcsb__base64_decode(const char *s, size_t n, hcsb__buf_t *out);

/* Appends one complete frame for `req` with SequenceID `id` to `out`: the
 * header and a compact JSON body (JSON-in-string fields double-encoded,
 * Request/Options/Settings nested).  Returns 0; -EINVAL when the request is
 * not encodable (unknown type without raw body, a required field missing, a
 * nested JSON text that is not a JSON object, frame > UINT32_MAX); -ENOMEM.
 * On failure `out` is unchanged.
 *
 * Details: a non-NULL activity_id must be a GUID (-EINVAL otherwise; the
 * peer's decoder rejects anything else).  Caller JSON texts (ContainerConfig,
 * ProcessParameters, Query, the ModifySettings Request, service Settings)
 * must each be one JSON object (hcsb__json_validate) and are sent verbatim
 * with outer whitespace trimmed: escaped into a string, or nested.  A NULL or
 * "" Query is sent as "".  UpdateContainer and LifecycleNotification are
 * encoded as the base only; raw_body frames may carry any type. */
int hcsb__request_encode(hcsb__buf_t *out, uint64_t id,
                         const hcsb_request_t *req);
/* The same, with the ActivityId given as its 16 bytes when `aid` is not
 * NULL (req->activity_id is then ignored), and the offset of the
 * ActivityId's 36 characters from the start of the frame stored in
 * *aid_off when `aid_off` is not NULL (0 for a raw body, which has none).
 * Byte for byte what hcsb__request_encode() writes for the same GUID in
 * lower case. */
int hcsb__request_encode_ex(hcsb__buf_t *out, uint64_t id,
                            const hcsb_request_t *req, const uint8_t *aid,
                            size_t *aid_off);
/* Rewrites the SequenceID of an encoded frame in place (inline: once per
 * call). */
static inline void hcsb__frame_set_id(void *frame, uint64_t id) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy((char *)frame + 8, &id, sizeof id); /* one store */
#else
  uint8_t *p = (uint8_t *)frame + 8;
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(id >> (8 * i));
#endif
}

/* Request templates.  Most calls of a busy host repeat one request with
 * only the ActivityId and the SequenceID changing (a shim polling a
 * container's statistics), so the frame is encoded once and each call
 * copies it and writes those two fields: no validation, escaping or
 * formatting per call.  A template is what hcsb__request_encode_ex()
 * produced for the request, so the bytes are the generic encoder's by
 * construction (test-proto-encode compares them for every call type). */
typedef struct hcsb__tmpl_s {
  char *frame;      /* the whole frame, SequenceID 0, zero ActivityId */
  uint32_t len;     /* 0: no template */
  uint32_t aid_off; /* where the ActivityId's characters go; 0: none */
  uint32_t type;    /* the request type */
} hcsb__tmpl_t;

#define HCSB__TMPL_INIT \
  { NULL, 0, 0, 0 }

/* Encodes `req` (req->activity_id ignored) into `t`, replacing what `t`
 * held.  0, or hcsb__request_encode()'s error (`t` unchanged). */
int hcsb__tmpl_build(hcsb__tmpl_t *t, const hcsb_request_t *req);
/* Appends the template's request with SequenceID `id` and ActivityId
 * `aid` (16 bytes; NULL: the zero GUID) to `out`.  0 or -ENOMEM (`out`
 * unchanged). */
int hcsb__tmpl_encode(hcsb__buf_t *out, uint64_t id, const hcsb__tmpl_t *t,
                      const uint8_t *aid);
void hcsb__tmpl_free(hcsb__tmpl_t *t);

/* ------------------------------------------------------------------------ */
/* Responses and notifications (guest -> host) */

/* Decoding context: owns the json-c tokener and the storage the decoded
 * structs point into.  One per bridge. */
/* Error records kept per response; the rest are checked and counted. */
#define HCSB__MAX_ERROR_RECORDS 64

typedef struct hcsb__decode_ctx_s {
  json_tokener *tok;
  json_object *root;  /* current decoded body */
  json_object *inner; /* decoded JSON-in-string field, if any */
  hcsb_caps_t caps;
  hcsb_error_record_t rec_inline[4];
  hcsb_error_record_t *recs; /* rec_inline or heap */
  size_t nrecs_cap;
  char *props_copy;     /* unused unless needed */
  size_t nrecs_omitted; /* ErrorRecords beyond HCSB__MAX_ERROR_RECORDS */
  /* Flat responses are read without json-c (src/proto/flat.c); their
   * strings live here.  flat_disabled forces the json-c path (tests). */
  int flat_disabled;
  /* Set by the caller for one decode: a flat GetProperties answer's
   * Properties text is taken without the JSON check (the caller parses it
   * as strictly); the json-c path checks it regardless. */
  int props_unchecked;
  char flat_strs[4096];
} hcsb__decode_ctx_t;

int hcsb__decode_ctx_init(hcsb__decode_ctx_t *ctx);
void hcsb__decode_ctx_free(hcsb__decode_ctx_t *ctx);
/* Releases what the last decode produced (call after the user callback). */
void hcsb__decode_release(hcsb__decode_ctx_t *ctx);

/* Decodes a response body of header type `type`.  Fills *resp; when Result is
 * non-zero also fills *gerr and sets *has_gerr = 1.  Strings point into ctx
 * storage until hcsb__decode_release().  Returns 0, or -EPROTO when the body is
 * not a JSON object, is nested too deep, lacks Result, or has a known field
 * of the wrong type / out of range; -ENOMEM.
 *
 * Details: Result is a JSON integer in int32 range (kept as its uint32 bits);
 * uint32 fields reject negatives, fractions and values above 2^32-1; invalid
 * UTF-8 anywhere is -EPROTO (a Go guest never produces it).  The typed
 * fields read depend on `type` (any other type: base fields only).
 * Capabilities absent => resp->caps NULL; GuestDefinedCapabilities absent =>
 * all false.  Properties must be a string holding valid JSON ("" = absent);
 * a guest sending an object/array instead gets its compact text exposed.
 * A null ErrorRecords element is a zero record.  On failure nothing is held
 * and *resp keeps only type/id/body. */
int hcsb__response_decode(hcsb__decode_ctx_t *ctx, uint32_t type, uint64_t id,
                          const char *body, size_t len, hcsb_response_t *resp,
                          hcsb_guest_error_t *gerr, int *has_gerr);

/* Decodes a container notification body: ContainerId (required string),
 * ActivityId, Type (-> kind), Operation, Result (int32, 0 when absent),
 * ResultInfo (JSON-in-string like Properties).  Returns 0, -EPROTO,
 * -ENOMEM. */
int hcsb__notification_decode(hcsb__decode_ctx_t *ctx, const char *body,
                              size_t len, hcsb_notification_t *out);

/* Maps a notification Type string to its enum (case-insensitive). */
hcsb_notification_type_t hcsb__notification_type_parse(const char *s);

/* ------------------------------------------------------------------------ */
/* Misc */

/* A GUID's text: 8-4-4-4-12 hex digits. */
#define HCSB__GUID_LEN 36u
/* 1 when `s` is a canonical 8-4-4-4-12 hex GUID. */
int hcsb__guid_valid(const char *s);
/* Parses a canonical GUID (either case) into its 16 bytes in text order.
 * 0, or -EINVAL (`out` unchanged).  Reads nothing past a NUL. */
int hcsb__guid_parse(const char *s, uint8_t out[16]);
/* The 36 lower-case characters of the GUID with bytes `b` (no NUL). */
void hcsb__guid_format(const uint8_t b[16], char out[36]);
/* Whether the 16 bytes are the zero GUID's. */
static inline int hcsb__guid_is_zero(const uint8_t b[16]) {
  uint64_t lo, hi;
  memcpy(&lo, b, 8);
  memcpy(&hi, b + 8, 8);
  return (lo | hi) == 0;
}
/* A hex digit's value, -1 for any other byte. */
extern const signed char hcsb__hex_value[256];

/* hcsb_msg_name() for log lines: never NULL. */
const char *hcsb__msg_name(uint32_t type);
/* Writes a fresh random (v4) GUID in lower case: 36 chars + NUL. */
void hcsb__guid_generate(char out[37]);
/* The same, as the 16 bytes in text order. */
void hcsb__guid_generate_bytes(uint8_t out[16]);
/* Fresh v4 GUIDs without a system call each: two streams seeded once from
 * libuuid's randomness.  ActivityIds need to be unique, not secret: a
 * seeded stream repeats no value before 2^64 of them.  Zero-initialise. */
typedef struct hcsb__guid_rng_s {
  uint64_t s[2];
  int seeded;
} hcsb__guid_rng_t;
void hcsb__guid_rng_bytes(hcsb__guid_rng_t *r, uint8_t out[16]);

#endif /* HCSB_PROTO_H */
