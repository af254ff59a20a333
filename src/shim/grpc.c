/* The one table from an hcsbridge outcome to a grpc code (grpc.h). */
#include "shim/grpc.h"

static const struct {
  hcsb_errclass_t cls;
  hcsb__grpc_code_t code;
} class_codes[] = {
    {HCSB_ERRCLASS_OK, HCSB__GRPC_OK},
    {HCSB_ERRCLASS_NOT_FOUND, HCSB__GRPC_NOT_FOUND},
    {HCSB_ERRCLASS_ALREADY_EXISTS, HCSB__GRPC_ALREADY_EXISTS},
    {HCSB_ERRCLASS_FAILED_PRECONDITION, HCSB__GRPC_FAILED_PRECONDITION},
    {HCSB_ERRCLASS_UNAVAILABLE, HCSB__GRPC_UNAVAILABLE},
    {HCSB_ERRCLASS_NOT_IMPLEMENTED, HCSB__GRPC_UNIMPLEMENTED},
    {HCSB_ERRCLASS_DEADLINE_EXCEEDED, HCSB__GRPC_DEADLINE_EXCEEDED},
    {HCSB_ERRCLASS_CANCELED, HCSB__GRPC_CANCELLED},
    {HCSB_ERRCLASS_INVALID_ARGUMENT, HCSB__GRPC_INVALID_ARGUMENT},
    {HCSB_ERRCLASS_PERMISSION_DENIED, HCSB__GRPC_PERMISSION_DENIED},
    {HCSB_ERRCLASS_RESOURCE_EXHAUSTED, HCSB__GRPC_RESOURCE_EXHAUSTED},
    {HCSB_ERRCLASS_INTERNAL, HCSB__GRPC_INTERNAL},
    {HCSB_ERRCLASS_UNKNOWN, HCSB__GRPC_UNKNOWN},
};

hcsb__grpc_code_t hcsb__shim_grpc_code(int status,
                                       const hcsb_guest_error_t *gerr) {
  hcsb_errclass_t cls = hcsb_error_class(status, gerr);
  size_t i;

  for (i = 0; i < sizeof(class_codes) / sizeof(class_codes[0]); i++)
    if (class_codes[i].cls == cls) return class_codes[i].code;
  return HCSB__GRPC_UNKNOWN;
}

const char *hcsb__grpc_code_name(int code) {
  static const char *const names[] = {
      "OK",
      "Canceled",
      "Unknown",
      "InvalidArgument",
      "DeadlineExceeded",
      "NotFound",
      "AlreadyExists",
      "PermissionDenied",
      "ResourceExhausted",
      "FailedPrecondition",
      "Aborted",
      "OutOfRange",
      "Unimplemented",
      "Internal",
      "Unavailable",
      "DataLoss",
      "Unauthenticated",
  };

  if (code < 0 || (unsigned)code >= sizeof(names) / sizeof(names[0]))
    return "Unknown";
  return names[code];
}
