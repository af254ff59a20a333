/* Status strings, HRESULT names and guest error formatting.
 *
 * Tables only: strerror() may use a shared static buffer and its wording
 * varies between C libraries, while these strings are fixed and safe to
 * call from any thread. */
#include <stdio.h>

#include "proto/proto.h"

/* libuv's end-of-file status; transports may hand it through unchanged. */
#define STATUS_UV_EOF (-4095)

static const struct {
  int status;
  const char *text;
} status_texts[] = {
    {0, "success"},
    {HCSB_EGUEST, "the guest returned an error"},
    {-ETIMEDOUT, "operation timed out"},
    {-ECANCELED, "operation canceled"},
    {-ECONNRESET, "connection to the guest lost"},
    {-EPIPE, "write to the guest failed"},
    {-ECHILD, "the guest program exited before negotiating"},
    {-EPROTO, "protocol error (undecodable or mismatched message)"},
    {-EMSGSIZE, "message exceeds the frame size limit"},
    {-ENOMSG, "the peer sent requests, not responses (not a GCS)"},
    {-ENOTCONN, "bridge is not connected"},
    {-ENOBUFS, "configured limit reached"},
    {-ENOMEM, "out of memory"},
    {-EINVAL, "invalid argument"},
    {-ENOTSUP, "operation not supported"},
    {STATUS_UV_EOF, "end of file"},
    {-EAGAIN, "resource temporarily unavailable"},
    {-EACCES, "permission denied"},
    {-EPERM, "operation not permitted"},
    {-ENOENT, "no such file or directory"},
    {-EEXIST, "file already exists"},
    {-EBADF, "bad file descriptor"},
    {-EBUSY, "resource busy"},
    {-EINTR, "interrupted system call"},
    {-EIO, "input/output error"},
    {-ENOSPC, "no space left on device"},
    {-ENAMETOOLONG, "name too long"},
    {-ENOSYS, "function not implemented"},
    {-ENOTSOCK, "not a socket"},
    {-ENODEV, "no such device"},
    {-EMFILE, "too many open files"},
    {-EALREADY, "operation already in progress"},
    {-EINPROGRESS, "operation in progress"},
    {-EADDRINUSE, "address already in use"},
    {-EADDRNOTAVAIL, "address not available"},
    {-EAFNOSUPPORT, "address family not supported"},
    {-ECONNREFUSED, "connection refused"},
    {-ECONNABORTED, "connection aborted"},
    {-EHOSTUNREACH, "host is unreachable"},
    {-ENETUNREACH, "network is unreachable"},
    {-ESRCH, "no such process"},
    {-ECHILD, "a helper process failed"},
    {-EHOSTDOWN, "the utility VM is down"},
    {-E2BIG, "argument list too long"},
    {-ERANGE, "result out of range"},
};

const char *hcsb_strerror(int status) {
  size_t i;

  for (i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++) {
    if (status_texts[i].status == status) return status_texts[i].text;
  }
  return "unknown error";
}

/* Names follow hcsshim's constants without their Hr/Err prefixes, or the
 * Windows SDK names for generic HRESULTs and Win32 codes.  The HRESULT form
 * of ERROR_NOT_FOUND shares the Win32 name, as Windows tools print it. */
static const struct {
  uint32_t hr;
  const char *name;
} hresult_names[] = {
    {HCSB_S_OK, "S_OK"},
    {HCSB_E_NOTIMPL, "E_NOTIMPL"},
    {HCSB_E_FAIL, "E_FAIL"},
    {HCSB_E_INVALIDARG, "E_INVALIDARG"},
    {HCSB_E_NOT_FOUND, "ERROR_NOT_FOUND"},
    {HCSB_E_VMCOMPUTE_TIMEOUT, "VmcomputeTimeout"},
    {HCSB_E_VMCOMPUTE_UNKNOWN_MESSAGE, "VmcomputeUnknownMessage"},
    {HCSB_E_VMCOMPUTE_UNSUPPORTED_PROTOCOL_VERSION,
     "VmcomputeUnsupportedProtocolVersion"},
    {HCSB_E_VMCOMPUTE_INVALID_JSON, "VmcomputeInvalidJson"},
    {HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, "VmcomputeSystemNotFound"},
    {HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_EXISTS, "VmcomputeSystemAlreadyExists"},
    {HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_STOPPED, "VmcomputeSystemAlreadyStopped"},
    {HCSB_E_VMCOMPUTE_INVALID_STATE, "VmcomputeInvalidState"},
    {HCSB_E_VMCOMPUTE_OPERATION_PENDING, "VmcomputeOperationPending"},
    {HCSB_E_VMCOMPUTE_OPERATION_INVALID_STATE,
     "VmcomputeOperationInvalidState"},
    {HCSB_E_VMCOMPUTE_UNEXPECTED_EXIT, "VmcomputeUnexpectedExit"},
    /* The warning-severity twin of 0xC0370110 that hcsshim main defines. */
    {HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_STOPPED_HR,
     "VmcomputeSystemAlreadyStoppedHr"},
    {HCSB_E_PROCESS_ALREADY_STOPPED, "ProcessAlreadyStopped"},
    /* Bare Win32 error codes hcsshim's host side compares against. */
    {0x490u, "ERROR_NOT_FOUND"},
    {0x32u, "ERROR_NOT_SUPPORTED"},
    {0xDu, "ERROR_INVALID_DATA"},
    {0x5u, "ERROR_ACCESS_DENIED"},
    {0x6u, "ERROR_INVALID_HANDLE"},
    {0x7Fu, "ERROR_PROC_NOT_FOUND"},
};

const char *hcsb_hresult_name(uint32_t hresult) {
  size_t i;

  for (i = 0; i < sizeof(hresult_names) / sizeof(hresult_names[0]); i++) {
    if (hresult_names[i].hr == hresult) return hresult_names[i].name;
  }
  return NULL;
}

int hcsb_guest_error_format(const hcsb_guest_error_t *err, char *buf,
                            size_t len) {
  const char *name, *msg;
  char hr[64];

  if (err == NULL) return snprintf(buf, len, "guest error (none)");
  name = hcsb_hresult_name(err->hresult);
  if (name != NULL)
    snprintf(hr, sizeof(hr), "0x%08X (%s)", (unsigned)err->hresult, name);
  else
    snprintf(hr, sizeof(hr), "0x%08X", (unsigned)err->hresult);
  msg = err->message != NULL ? err->message : "";
  if (msg[0] == '\0') return snprintf(buf, len, "guest error %s", hr);
  return snprintf(buf, len, "guest error %s: %s", hr, msg);
}
