/* QMP (QEMU's JSON monitor protocol), the codec with no I/O.  Internal.
 *
 * QEMU sends one JSON object per message, each followed by "\r\n": a
 * greeting {"QMP": {...}} once, then answers {"return": X, "id": ID} or
 * {"error": {"class": C, "desc": D}, "id": ID} in the order of our
 * commands, and events {"event": NAME, "data": {...}, "timestamp":
 * {"seconds": S, "microseconds": U}} at any time.  We send {"execute":
 * NAME, "arguments": {...}, "id": N} with integer ids of our own.
 *
 * The decoder takes any chunks and hands out one message per call.  What
 * QEMU sends is bounded (one message's bytes and nesting depth); anything
 * that is not one of the four shapes above is an error that ends the
 * stream (the monitor cannot be trusted after it).  No libuv here: the
 * unit tests feed byte strings and the fuzz target feeds anything.
 */
#ifndef HCSB_UVM_QMP_H
#define HCSB_UVM_QMP_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define HCSB__QMP_MAX_MSG_DEFAULT (1u << 20) /* bytes of one message */
#define HCSB__QMP_MAX_DEPTH 32

typedef enum hcsb__qmp_kind_e {
  HCSB__QMP_GREETING = 1,
  HCSB__QMP_RETURN = 2,
  HCSB__QMP_ERROR = 3,
  HCSB__QMP_EVENT = 4
} hcsb__qmp_kind_t;

typedef struct hcsb__qmp_msg_s {
  hcsb__qmp_kind_t kind;
  /* RETURN, ERROR: the id QEMU echoed; has_id 0 when it sent none (its
   * answer to a command it could not parse) or one we never send (not a
   * non-negative integer). */
  int has_id;
  uint64_t id;
  /* RETURN: the "return" value; EVENT: "data" (NULL when absent);
   * GREETING: the object under "QMP".  Owned by `root`. */
  json_object *value;
  const char *error_class; /* ERROR: e.g. "GenericError" */
  const char *error_desc;  /* ERROR: QEMU's message */
  const char *event;       /* EVENT: e.g. "SHUTDOWN" */
  int64_t ts_seconds;      /* EVENT: -1 when QEMU gave no timestamp */
  int64_t ts_microseconds;
  json_object *root; /* the whole message; hcsb__qmp_msg_release drops it */
} hcsb__qmp_msg_t;

typedef struct hcsb__qmp_dec_s {
  json_tokener *tok;
  size_t fed;     /* bytes of the message being read */
  size_t max_msg; /* its bound */
  int error;      /* sticky: 0, -EPROTO, -EMSGSIZE */
} hcsb__qmp_dec_t;

/* 0 or -ENOMEM.  `max_msg` 0 = HCSB__QMP_MAX_MSG_DEFAULT. */
int hcsb__qmp_dec_init(hcsb__qmp_dec_t *d, size_t max_msg);
void hcsb__qmp_dec_free(hcsb__qmp_dec_t *d);

/* Reads from `buf`.  Returns 1 with *msg filled when a message is
 * complete (*consumed bytes were used, the rest is for the next call); 0
 * when every byte was used and no message is complete yet; -EPROTO (not
 * JSON, not an object, a shape QMP does not have, a NUL byte, bad UTF-8),
 * -EMSGSIZE (a message over max_msg bytes) or -ENOMEM, and then every
 * later call fails the same way.  Release each message. */
int hcsb__qmp_dec_feed(hcsb__qmp_dec_t *d, const char *buf, size_t len,
                       size_t *consumed, hcsb__qmp_msg_t *msg);
void hcsb__qmp_msg_release(hcsb__qmp_msg_t *msg);

/* {"execute": command, "arguments": args, "id": id} and "\r\n", in a new
 * NUL-terminated string (free() it; *len without the NUL).  `args` may be
 * NULL (no "arguments"); it is not consumed.  NULL on -ENOMEM or an
 * empty command. */
char *hcsb__qmp_encode(uint64_t id, const char *command, json_object *args,
                       size_t *len);

#endif /* HCSB_UVM_QMP_H */
