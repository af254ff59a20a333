/* Outcome -> grpc code: the library's errdefs class, then this table. */
#include "config.h"

#include <stdio.h>

#include <hcsbridge/errors.h>

#include "shim/errmap.h"

static const int class_code[] = {
    [HCSB_ERRCLASS_OK] = HCSB__GRPC_OK,
    [HCSB_ERRCLASS_UNKNOWN] = HCSB__GRPC_UNKNOWN,
    [HCSB_ERRCLASS_NOT_FOUND] = HCSB__GRPC_NOT_FOUND,
    [HCSB_ERRCLASS_ALREADY_EXISTS] = HCSB__GRPC_ALREADY_EXISTS,
    [HCSB_ERRCLASS_FAILED_PRECONDITION] = HCSB__GRPC_FAILED_PRECONDITION,
    [HCSB_ERRCLASS_UNAVAILABLE] = HCSB__GRPC_UNAVAILABLE,
    [HCSB_ERRCLASS_NOT_IMPLEMENTED] = HCSB__GRPC_UNIMPLEMENTED,
    [HCSB_ERRCLASS_DEADLINE_EXCEEDED] = HCSB__GRPC_DEADLINE_EXCEEDED,
    [HCSB_ERRCLASS_CANCELED] = HCSB__GRPC_CANCELLED,
    [HCSB_ERRCLASS_INVALID_ARGUMENT] = HCSB__GRPC_INVALID_ARGUMENT,
    [HCSB_ERRCLASS_PERMISSION_DENIED] = HCSB__GRPC_PERMISSION_DENIED,
    [HCSB_ERRCLASS_RESOURCE_EXHAUSTED] = HCSB__GRPC_RESOURCE_EXHAUSTED,
    [HCSB_ERRCLASS_INTERNAL] = HCSB__GRPC_INTERNAL,
};

int hcsb__shim_grpc_code(int status, const hcsb_guest_error_t *gerr) {
  hcsb_errclass_t c = hcsb_error_class(status, gerr);

  if (status != 0 && c == HCSB_ERRCLASS_OK) return HCSB__GRPC_UNKNOWN;
  if ((unsigned)c >= sizeof class_code / sizeof class_code[0])
    return HCSB__GRPC_UNKNOWN;
  return class_code[c];
}

const char *hcsb__shim_errmsg(char *buf, size_t len, const char *what,
                              int status, const hcsb_guest_error_t *gerr) {
  const char *sep = what != NULL && what[0] != '\0' ? ": " : "";

  if (what == NULL) what = "";
  if (status == HCSB_EGUEST && gerr != NULL) {
    const char *name = hcsb_hresult_name(gerr->hresult);
    snprintf(buf, len, "%s%sguest error 0x%08x%s%s%s%s%s", what, sep,
             (unsigned)gerr->hresult, name != NULL ? " (" : "",
             name != NULL ? name : "", name != NULL ? ")" : "",
             gerr->message[0] != '\0' ? ": " : "", gerr->message);
  } else {
    snprintf(buf, len, "%s%s%s", what, sep, hcsb_strerror(status));
  }
  return buf;
}
