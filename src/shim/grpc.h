/* containerd-shim-hcsb-v1 — grpc status codes and the one table that maps
 * an hcsbridge outcome to one.
 *
 * ttrpc carries grpc's status codes (google.rpc.Status.code) and containerd
 * turns them back into its errdefs errors (errdefs.FromGRPC):
 * INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
 * UNAVAILABLE, UNIMPLEMENTED, CANCELLED and DEADLINE_EXCEEDED keep their
 * meaning; every other code reaches ctr as an unknown error with the text.
 *
 * Every library status goes through hcsb__shim_grpc_code(), which uses
 * hcsb_error_class() (<hcsbridge/errors.h>) and nothing else, so the shim
 * has exactly one place that decides what a failure is called. */
#ifndef HCSB_SHIM_GRPC_H
#define HCSB_SHIM_GRPC_H

#include <hcsbridge/errors.h>

typedef enum hcsb__grpc_code_e {
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
  HCSB__GRPC_ABORTED = 10,
  HCSB__GRPC_OUT_OF_RANGE = 11,
  HCSB__GRPC_UNIMPLEMENTED = 12,
  HCSB__GRPC_INTERNAL = 13,
  HCSB__GRPC_UNAVAILABLE = 14,
  HCSB__GRPC_DATA_LOSS = 15,
  HCSB__GRPC_UNAUTHENTICATED = 16
} hcsb__grpc_code_t;

/* The grpc code for an outcome as a library callback reports it: `status`
 * is 0, a negative errno or HCSB_EGUEST, `gerr` may be NULL.
 *
 *   errdefs class (hcsb_error_class)   grpc code
 *   OK                                 OK
 *   NOT_FOUND                          NOT_FOUND
 *   ALREADY_EXISTS                     ALREADY_EXISTS
 *   FAILED_PRECONDITION                FAILED_PRECONDITION
 *   UNAVAILABLE                        UNAVAILABLE
 *   NOT_IMPLEMENTED                    UNIMPLEMENTED
 *   DEADLINE_EXCEEDED                  DEADLINE_EXCEEDED
 *   CANCELED                           CANCELLED
 *   INVALID_ARGUMENT                   INVALID_ARGUMENT
 *   PERMISSION_DENIED                  PERMISSION_DENIED
 *   RESOURCE_EXHAUSTED                 RESOURCE_EXHAUSTED
 *   INTERNAL                           INTERNAL
 *   UNKNOWN                            UNKNOWN */
hcsb__grpc_code_t hcsb__shim_grpc_code(int status,
                                       const hcsb_guest_error_t *gerr);

/* grpc's name of a code ("OK", "NotFound", "Unimplemented", ...);
 * "Unknown" for a value outside 0..16.  Never NULL. */
const char *hcsb__grpc_code_name(int code);

#endif /* HCSB_SHIM_GRPC_H */
