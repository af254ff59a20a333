/* Error classification (hcsbridge/errors.h): one row per code, so the
 * header's table and this one can be read side by side. */
#include "proto/proto.h"

#include <hcsbridge/errors.h>

enum {
  F_NOT_EXIST = 1u << 0,
  F_STOPPED = 1u << 1,
  F_CLOSED = 1u << 2,
  F_TIMEOUT = 1u << 3,
  F_NOTSUP = 1u << 4,
  F_EXISTS = 1u << 5,
  F_STATE = 1u << 6,
  F_PENDING = 1u << 7,
  F_DENIED = 1u << 8
};

typedef struct row_s {
  uint32_t code; /* an HRESULT, or the errno value (positive) */
  unsigned flags;
  hcsb_errclass_t cls;
} row_t;

static const row_t hresults[] = {
    {HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, F_NOT_EXIST, HCSB_ERRCLASS_NOT_FOUND},
    {HCSB_E_NOT_FOUND, F_NOT_EXIST | F_STOPPED, HCSB_ERRCLASS_NOT_FOUND},
    {0x490u, F_NOT_EXIST | F_STOPPED, HCSB_ERRCLASS_NOT_FOUND},
    {HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_STOPPED, F_STOPPED,
     HCSB_ERRCLASS_FAILED_PRECONDITION},
    {HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_STOPPED_HR, F_STOPPED,
     HCSB_ERRCLASS_FAILED_PRECONDITION},
    {HCSB_E_PROCESS_ALREADY_STOPPED, F_STOPPED,
     HCSB_ERRCLASS_FAILED_PRECONDITION},
    {0x6u, F_CLOSED, HCSB_ERRCLASS_UNAVAILABLE},
    {HCSB_E_VMCOMPUTE_UNEXPECTED_EXIT, 0, HCSB_ERRCLASS_UNAVAILABLE},
    {HCSB_E_VMCOMPUTE_TIMEOUT, F_TIMEOUT, HCSB_ERRCLASS_DEADLINE_EXCEEDED},
    {HCSB_E_NOTIMPL, F_NOTSUP, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {HCSB_E_VMCOMPUTE_UNKNOWN_MESSAGE, F_NOTSUP, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {HCSB_E_VMCOMPUTE_UNSUPPORTED_PROTOCOL_VERSION, F_NOTSUP,
     HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {HCSB_E_VMCOMPUTE_INVALID_JSON, F_NOTSUP, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {0x32u, F_NOTSUP, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {0xDu, F_NOTSUP, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {0x7Fu, F_NOTSUP, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_EXISTS, F_EXISTS,
     HCSB_ERRCLASS_ALREADY_EXISTS},
    {HCSB_E_VMCOMPUTE_INVALID_STATE, F_STATE,
     HCSB_ERRCLASS_FAILED_PRECONDITION},
    {HCSB_E_VMCOMPUTE_OPERATION_INVALID_STATE, F_STATE,
     HCSB_ERRCLASS_FAILED_PRECONDITION},
    {HCSB_E_VMCOMPUTE_OPERATION_PENDING, F_PENDING, HCSB_ERRCLASS_UNKNOWN},
    {0x5u, F_DENIED, HCSB_ERRCLASS_PERMISSION_DENIED},
    {HCSB_E_INVALIDARG, 0, HCSB_ERRCLASS_INVALID_ARGUMENT},
};

static const row_t errnos[] = {
    {ENOENT, F_NOT_EXIST, HCSB_ERRCLASS_NOT_FOUND},
    {ESRCH, F_NOT_EXIST | F_STOPPED, HCSB_ERRCLASS_NOT_FOUND},
    {ENOTCONN, F_CLOSED, HCSB_ERRCLASS_UNAVAILABLE},
    {EBADF, F_CLOSED, HCSB_ERRCLASS_UNAVAILABLE},
    {ECONNRESET, F_CLOSED, HCSB_ERRCLASS_UNAVAILABLE},
    {EPIPE, F_CLOSED, HCSB_ERRCLASS_UNAVAILABLE},
    {ECHILD, F_CLOSED, HCSB_ERRCLASS_UNAVAILABLE},
    {ETIMEDOUT, F_TIMEOUT, HCSB_ERRCLASS_DEADLINE_EXCEEDED},
    {ENOTSUP, F_NOTSUP, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {ENOSYS, F_NOTSUP, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {EAFNOSUPPORT, 0, HCSB_ERRCLASS_NOT_IMPLEMENTED},
    {EEXIST, F_EXISTS, HCSB_ERRCLASS_ALREADY_EXISTS},
    {EBUSY, F_STATE, HCSB_ERRCLASS_FAILED_PRECONDITION},
    {ENODATA, F_STATE, HCSB_ERRCLASS_FAILED_PRECONDITION},
    {EALREADY, 0, HCSB_ERRCLASS_FAILED_PRECONDITION},
    {EINPROGRESS, F_PENDING, HCSB_ERRCLASS_UNKNOWN},
    {EACCES, F_DENIED, HCSB_ERRCLASS_PERMISSION_DENIED},
    {EPERM, F_DENIED, HCSB_ERRCLASS_PERMISSION_DENIED},
    {ECANCELED, 0, HCSB_ERRCLASS_CANCELED},
    {EINVAL, 0, HCSB_ERRCLASS_INVALID_ARGUMENT},
    {ENAMETOOLONG, 0, HCSB_ERRCLASS_INVALID_ARGUMENT},
    {E2BIG, 0, HCSB_ERRCLASS_INVALID_ARGUMENT},
    {ERANGE, 0, HCSB_ERRCLASS_INVALID_ARGUMENT},
    {ENOMEM, 0, HCSB_ERRCLASS_RESOURCE_EXHAUSTED},
    {ENOBUFS, 0, HCSB_ERRCLASS_RESOURCE_EXHAUSTED},
    {EMFILE, 0, HCSB_ERRCLASS_RESOURCE_EXHAUSTED},
    {ENFILE, 0, HCSB_ERRCLASS_RESOURCE_EXHAUSTED},
    {ENOSPC, 0, HCSB_ERRCLASS_RESOURCE_EXHAUSTED},
    {EPROTO, 0, HCSB_ERRCLASS_INTERNAL},
    {EMSGSIZE, 0, HCSB_ERRCLASS_INTERNAL},
};

static const row_t *find(const row_t *rows, size_t n, uint32_t code) {
  size_t i;

  for (i = 0; i < n; i++)
    if (rows[i].code == code) return &rows[i];
  return NULL;
}

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* NULL for success and for codes no row names. */
static const row_t *lookup(int status, const hcsb_guest_error_t *gerr) {
  if (status == HCSB_EGUEST)
    return gerr != NULL ? find(hresults, NROWS(hresults), gerr->hresult) : NULL;
  if (status >= 0) return NULL;
  return find(errnos, NROWS(errnos), (uint32_t) - (int64_t)status);
}

hcsb_errclass_t hcsb_error_class(int status, const hcsb_guest_error_t *gerr) {
  const row_t *r;

  if (status == 0) return HCSB_ERRCLASS_OK;
  if (status == HCSB_EGUEST && gerr != NULL && gerr->hresult == 0)
    return HCSB_ERRCLASS_UNKNOWN; /* a failure that names no cause */
  r = lookup(status, gerr);
  return r != NULL ? r->cls : HCSB_ERRCLASS_UNKNOWN;
}

hcsb_errclass_t hcsb_hresult_class(uint32_t hresult) {
  const row_t *r;

  if (hresult == 0) return HCSB_ERRCLASS_OK;
  r = find(hresults, NROWS(hresults), hresult);
  return r != NULL ? r->cls : HCSB_ERRCLASS_UNKNOWN;
}

const char *hcsb_errclass_name(hcsb_errclass_t c) {
  static const char *const names[] = {"OK",
                                      "Unknown",
                                      "NotFound",
                                      "AlreadyExists",
                                      "FailedPrecondition",
                                      "Unavailable",
                                      "NotImplemented",
                                      "DeadlineExceeded",
                                      "Canceled",
                                      "InvalidArgument",
                                      "PermissionDenied",
                                      "ResourceExhausted",
                                      "Internal"};

  if ((unsigned)c >= NROWS(names)) return "Unknown";
  return names[c];
}

static int has(int status, const hcsb_guest_error_t *gerr, unsigned flag) {
  const row_t *r = lookup(status, gerr);
  return r != NULL && (r->flags & flag) != 0;
}

int hcsb_is_not_exist(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_NOT_EXIST);
}

int hcsb_is_already_stopped(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_STOPPED);
}

int hcsb_is_already_closed(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_CLOSED);
}

int hcsb_is_timeout(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_TIMEOUT);
}

int hcsb_is_not_supported(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_NOTSUP);
}

int hcsb_is_already_exists(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_EXISTS);
}

int hcsb_is_invalid_state(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_STATE);
}

int hcsb_is_pending(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_PENDING);
}

int hcsb_is_access_denied(int status, const hcsb_guest_error_t *gerr) {
  return has(status, gerr, F_DENIED);
}
