/* hcsbridge — error classification: hcsshim's IsNotExist, IsAlreadyStopped,
 * IsAlreadyClosed, IsTimeout, IsNotSupported ... and one call that maps any
 * outcome to a containerd errdefs class.
 *
 * Every function takes what a callback receives: `status` (0, a negative
 * errno value or HCSB_EGUEST) and `gerr` (may be NULL).  The guest's HRESULT
 * is consulted only when status is HCSB_EGUEST and gerr is not NULL; a
 * negative errno is classified by its value.  Nothing here allocates or
 * blocks; every function is safe from any thread.
 *
 * Which codes map to what (protocol.md §10.2; a code may be in more
 * than one predicate, exactly as in hcsshim):
 *
 *   predicate               HRESULTs                          errno statuses
 *   hcsb_is_not_exist       0xC037010E SystemNotFound,        -ENOENT, -ESRCH
 *                           0x80070490 and 0x490 NotFound
 *   hcsb_is_already_stopped 0xC0370110, 0x80370110 (already  -ESRCH
 *                           stopped), 0x8037011F (process
 *                           already stopped), 0x80070490, 0x490
 *   hcsb_is_already_closed  0x6 ERROR_INVALID_HANDLE          -ENOTCONN,
 *                                                             -EBADF,
 *                                                             -ECONNRESET,
 *                                                             -EPIPE,
 *                                                             -ECHILD
 *   hcsb_is_timeout         0xC0370109 VmcomputeTimeout       -ETIMEDOUT
 *   hcsb_is_not_supported   0x80004001 E_NOTIMPL,             -ENOTSUP,
 *                           0xC037010B UnknownMessage,        -ENOSYS
 *                           0xC037010C
 *                           UnsupportedProtocolVersion,
 *                           0xC037010D InvalidJson, 0x32
 *                           NOT_SUPPORTED, 0xD INVALID_DATA,
 *                           0x7F PROC_NOT_FOUND
 *   hcsb_is_already_exists  0xC037010F SystemAlreadyExists    -EEXIST
 *   hcsb_is_invalid_state   0x80370105, 0xC0370105            -EBUSY, -ENODATA
 *   hcsb_is_pending         0xC0370103 OperationPending       -EINPROGRESS
 *   hcsb_is_access_denied   0x5 ACCESS_DENIED                 -EACCES, -EPERM
 *
 * hcsb_error_class() picks one class per code; where a code is in several
 * predicates the class is the first named here:
 *
 *   NOT_FOUND            not_exist codes (0x80070490 included)
 *   ALREADY_EXISTS       already_exists codes
 *   FAILED_PRECONDITION  already_stopped codes not in not_exist (0xC0370110,
 *                        0x80370110, 0x8037011F), invalid_state codes,
 *                        -EALREADY
 *   UNAVAILABLE          already_closed codes, 0xC0370106 UnexpectedExit
 *   NOT_IMPLEMENTED      not_supported codes, -EAFNOSUPPORT
 *   DEADLINE_EXCEEDED    timeout codes
 *   CANCELED             -ECANCELED
 *   INVALID_ARGUMENT     0x80070057 E_INVALIDARG, -EINVAL, -ENAMETOOLONG,
 *                        -E2BIG, -ERANGE
 *   PERMISSION_DENIED    access_denied codes
 *   RESOURCE_EXHAUSTED   -ENOMEM, -ENOBUFS, -EMFILE, -ENFILE, -ENOSPC
 *   INTERNAL             -EPROTO, -EMSGSIZE (the guest's answer was unusable)
 *   UNKNOWN              everything else: 0x80004005 E_FAIL, the pending
 *                        codes (0xC0370103, -EINPROGRESS: not a failure
 *                        class), HCSB_EGUEST without gerr or with HRESULT
 *                        0, unlisted codes
 *   OK                   status 0
 *
 * containerd note: its runc shim reports a Kill of an exited process as
 * ErrNotFound, hcsshim's shim ignores IsAlreadyStopped on Kill; use the
 * predicates where an operation needs that nuance. */
#ifndef HCSBRIDGE_ERRORS_H
#define HCSBRIDGE_ERRORS_H

#include <hcsbridge/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* containerd's errdefs classes (plus context's Canceled/DeadlineExceeded). */
typedef enum hcsb_errclass_e {
  HCSB_ERRCLASS_OK = 0,
  HCSB_ERRCLASS_UNKNOWN,
  HCSB_ERRCLASS_NOT_FOUND,
  HCSB_ERRCLASS_ALREADY_EXISTS,
  HCSB_ERRCLASS_FAILED_PRECONDITION,
  HCSB_ERRCLASS_UNAVAILABLE,
  HCSB_ERRCLASS_NOT_IMPLEMENTED,
  HCSB_ERRCLASS_DEADLINE_EXCEEDED,
  HCSB_ERRCLASS_CANCELED,
  HCSB_ERRCLASS_INVALID_ARGUMENT,
  HCSB_ERRCLASS_PERMISSION_DENIED,
  HCSB_ERRCLASS_RESOURCE_EXHAUSTED,
  HCSB_ERRCLASS_INTERNAL
} hcsb_errclass_t;

/* The class of an outcome (table above). */
HCSB_EXTERN hcsb_errclass_t hcsb_error_class(int status,
                                             const hcsb_guest_error_t *gerr);
/* The class of a bare HRESULT (0 is OK), e.g. one kept from an earlier
 * callback. */
HCSB_EXTERN hcsb_errclass_t hcsb_hresult_class(uint32_t hresult);
/* errdefs' name of a class: "NotFound", "AlreadyExists",
 * "FailedPrecondition", "Unavailable", "NotImplemented",
 * "DeadlineExceeded", "Canceled", "InvalidArgument", "PermissionDenied",
 * "ResourceExhausted", "Internal", "Unknown", "OK".  Never NULL. */
HCSB_EXTERN const char *hcsb_errclass_name(hcsb_errclass_t c);

/* 1 or 0, per the table above. */
HCSB_EXTERN int hcsb_is_not_exist(int status, const hcsb_guest_error_t *gerr);
HCSB_EXTERN int hcsb_is_already_stopped(int status,
                                        const hcsb_guest_error_t *gerr);
HCSB_EXTERN int hcsb_is_already_closed(int status,
                                       const hcsb_guest_error_t *gerr);
HCSB_EXTERN int hcsb_is_timeout(int status, const hcsb_guest_error_t *gerr);
HCSB_EXTERN int hcsb_is_not_supported(int status,
                                      const hcsb_guest_error_t *gerr);
HCSB_EXTERN int hcsb_is_already_exists(int status,
                                       const hcsb_guest_error_t *gerr);
HCSB_EXTERN int hcsb_is_invalid_state(int status,
                                      const hcsb_guest_error_t *gerr);
HCSB_EXTERN int hcsb_is_pending(int status, const hcsb_guest_error_t *gerr);
HCSB_EXTERN int hcsb_is_access_denied(int status,
                                      const hcsb_guest_error_t *gerr);

#ifdef __cplusplus
}
#endif
#endif /* HCSBRIDGE_ERRORS_H */
