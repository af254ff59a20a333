/* Request templates (proto.h): a frame encoded once, copied per call with
 * its SequenceID and ActivityId written in. */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int hcsb__tmpl_build(hcsb__tmpl_t *t, const hcsb_request_t *req) {
  hcsb__buf_t b = HCSB__BUF_INIT;
  size_t aid_off = 0;
  int r = hcsb__request_encode_ex(&b, 0, req, NULL, &aid_off);

  if (r == 0 && req->raw_body == NULL) {
    /* The zero GUID stands in for every call's own. */
    memcpy(b.data + aid_off, HCSB_ZERO_GUID, HCSB__GUID_LEN);
  }
  if (r != 0) {
    hcsb__buf_free(&b);
    return r;
  }
  free(t->frame);
  t->frame = b.data;
  t->len = (uint32_t)b.len; /* the encoder refuses frames above 4 GiB */
  t->aid_off = (uint32_t)aid_off;
  t->type = req->type;
  return 0;
}

int hcsb__tmpl_encode(hcsb__buf_t *out, uint64_t id, const hcsb__tmpl_t *t,
                      const uint8_t *aid) {
  char *p;

  if (hcsb__buf_reserve(out, t->len) != 0) return -ENOMEM;
  p = out->data + out->len;
  memcpy(p, t->frame, t->len);
  hcsb__frame_set_id(p, id);
  /* The template already holds the zero GUID's text, which is what hcsshim
   * sends as every call's ActivityId. */
  if (aid != NULL && t->aid_off != 0 && !hcsb__guid_is_zero(aid))
    hcsb__guid_format(aid, p + t->aid_off);
  out->len += t->len;
  return 0;
}

void hcsb__tmpl_free(hcsb__tmpl_t *t) {
  free(t->frame);
  t->frame = NULL;
  t->len = t->aid_off = t->type = 0;
}
