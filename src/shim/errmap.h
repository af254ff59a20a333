/* One table from an outcome to the grpc status a Task method answers with.
 *
 * Every failure inside the shim is a status in the library's model (0, a
 * negative errno, or HCSB_EGUEST with the guest's error), and every one
 * reaches containerd through hcsb__shim_grpc_code(): the library's
 * hcsb_error_class() picks containerd's errdefs class (errors.h lists which
 * errno and HRESULT is what), and the table in errmap.c turns the class
 * into the grpc code containerd's errdefs.FromGRPC reads back as that same
 * class.  The shim's own refusals use errno values in that vocabulary:
 *   -ENOENT     no such task/exec, or it has finished      NOT_FOUND
 *   -EEXIST     the ID is taken                            ALREADY_EXISTS
 *   -EBUSY      not in a state for it (proc.h)             FAILED_PRECONDITION
 *   -EALREADY   already done                               FAILED_PRECONDITION
 *   -EINVAL     a malformed request, spec or mount         INVALID_ARGUMENT
 *   -ENOTSUP    not available with this guest              UNIMPLEMENTED
 *   -ETIMEDOUT  the guest did not answer in time           DEADLINE_EXCEEDED
 *   -ENOTCONN   the utility VM is gone                     UNAVAILABLE
 *   -ENOMEM, -ENOSPC                                       RESOURCE_EXHAUSTED
 */
#ifndef HCSB_SHIM_ERRMAP_H
#define HCSB_SHIM_ERRMAP_H

#include <hcsbridge/common.h>

/* grpc status codes (google.rpc.Code). */
enum {
  HCSB__GRPC_OK = 0,
  HCSB__GRPC_CANCELLED = 1,
  HCSB__GRPC_UNKNOWN = 2,
  HCSB__GRPC_INVALID_ARGUMENT = 3,
  HCSB__GRPC_DEADLINE_EXCEEDED = 4,
  HCSB__GRPC_NOT_FOUND = 5,
  HCSB__GRPC_ALREADY_EXISTS = 6,
  HCSB__GRPC_PERMISSION_DENIED = 7,
  HCSB__GRPC_RESOURCE_EXHAUSTED = 8,
  HCSB__GRPC_FAILED_PRECONDITION = 9,
  HCSB__GRPC_UNIMPLEMENTED = 12,
  HCSB__GRPC_INTERNAL = 13,
  HCSB__GRPC_UNAVAILABLE = 14
};

/* The grpc code for an outcome (`gerr` may be NULL). */
int hcsb__shim_grpc_code(int status, const hcsb_guest_error_t *gerr);

/* A one-line message for an outcome: `what` (may be NULL), then the guest's
 * HRESULT and message or hcsb_strerror(status).  Writes into buf (always
 * NUL-terminated) and returns it. */
const char *hcsb__shim_errmsg(char *buf, size_t len, const char *what,
                              int status, const hcsb_guest_error_t *gerr);

#endif
