/* Internal to src/proto: the allocation-free decoder for flat responses
 * (see flat.c). */
#ifndef HCSB_PROTO_FLAT_H
#define HCSB_PROTO_FLAT_H

#include "proto/proto.h"

/* Decodes `body` into *resp (already zeroed, type/id/body set) when it is a
 * flat response the fast path can read exactly as the json-c path would;
 * *message gets ErrorMessage or NULL.  Returns 1 when decoded, 0 when the
 * body must go through the json-c path (which also reports every error).
 * Strings point into ctx->flat_strs. */
int hcsb__response_decode_flat(hcsb__decode_ctx_t *ctx, uint32_t type,
                               const char *body, size_t len,
                               hcsb_response_t *resp, const char **message);

#endif
