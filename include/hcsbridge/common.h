/* hcsbridge — common definitions: export macro, error model, protocol
 * identifiers and their names.  Nothing here does I/O.
 *
 * Error model (every function in the library follows it):
 *   - Functions return 0 or a negative errno value (-EINVAL, -ENOMEM, ...).
 *   - Callbacks receive a status: 0, or a negative errno value.
 *   - When the guest answered with a non-zero Result (an HRESULT), the status
 *     is HCSB_EGUEST and the guest's error (HRESULT as uint32_t, ErrorMessage,
 *     ErrorRecords) is handed to the callback as an hcsb_guest_error_t.
 *   - hcsb_strerror() turns any status into a readable string.
 */
#ifndef HCSBRIDGE_COMMON_H
#define HCSBRIDGE_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <hcsbridge/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define HCSB_EXTERN __attribute__((visibility("default")))
#else
#define HCSB_EXTERN
#endif

/* ------------------------------------------------------------------------ */
/* Version */

/* Returns HCSB_VERSION_HEX of the library actually linked. */
HCSB_EXTERN unsigned int hcsb_version(void);
/* Returns HCSB_VERSION_STRING of the library actually linked. */
HCSB_EXTERN const char *hcsb_version_string(void);

/* ------------------------------------------------------------------------ */
/* Status codes
 *
 * Local failures are negative errno values:
 *   -ETIMEDOUT   the per-call timeout expired (the call is forgotten; a late
 *                response is dropped and counted)
 *   -ECANCELED   the call was cancelled, or the bridge was closed by its owner
 *   -ECONNRESET  the connection was lost (EOF, read error, untrustworthy byte
 *                stream); hcsb_bridge_close_cause() tells the original cause
 *   -EPIPE       a write to the guest failed
 *   -ECHILD      a guest started by a spawn: address exited before the
 *                negotiation ended (hcsb_bridge_guest_exit() says how)
 *   -EPROTO      the guest's response could not be decoded, or its type does
 *                not match the request
 *   -EMSGSIZE    the guest's response exceeded the configured frame limit
 *   -ENOMSG      the peer sent requests where a response was expected while
 *                negotiating: it is not a GCS
 *   -ENOTCONN    the bridge is closed (or was never connected)
 *   -ENOBUFS     a configured limit (pending calls, queued write bytes) is hit
 *   -ENOMEM      out of memory
 *   -EINVAL      an argument is invalid
 *   -ENOTSUP     the operation does not exist for a Linux guest
 * The guest's own errors are reported as HCSB_EGUEST (below).
 */
#define HCSB_EGUEST (-EREMOTEIO)

/* Returns a static string describing `status` (0, a negative errno, or
 * HCSB_EGUEST).  Never NULL. */
HCSB_EXTERN const char *hcsb_strerror(int status);

/* ------------------------------------------------------------------------ */
/* Guest errors */

typedef struct hcsb_error_record_s {
  uint32_t result;           /* HRESULT of this record */
  const char *message;       /* never NULL ("" when absent) */
  const char *stack_trace;   /* NULL when absent */
  const char *module_name;   /* NULL when absent ("gcs" for the Linux GCS) */
  const char *file_name;     /* NULL when absent */
  uint32_t line;             /* 4294967295 when unknown */
  const char *function_name; /* NULL when absent */
} hcsb_error_record_t;

/* What the guest said when Result != 0.  Owned by the library; valid only
 * for the duration of the callback it is passed to (copy what you keep). */
typedef struct hcsb_guest_error_s {
  uint32_t hresult;    /* Result, reinterpreted as unsigned */
  const char *message; /* ErrorMessage, never NULL ("" if absent) */
  size_t nrecords;
  const hcsb_error_record_t *records; /* nrecords entries */
} hcsb_guest_error_t;

/* HRESULTs seen on the bridge (protocol.md §10.2). */
#define HCSB_S_OK 0x00000000u
#define HCSB_E_NOTIMPL 0x80004001u
#define HCSB_E_FAIL 0x80004005u
#define HCSB_E_INVALIDARG 0x80070057u
#define HCSB_E_NOT_FOUND 0x80070490u
#define HCSB_E_VMCOMPUTE_TIMEOUT 0xC0370109u
#define HCSB_E_VMCOMPUTE_UNKNOWN_MESSAGE 0xC037010Bu
#define HCSB_E_VMCOMPUTE_UNSUPPORTED_PROTOCOL_VERSION 0xC037010Cu
#define HCSB_E_VMCOMPUTE_INVALID_JSON 0xC037010Du
#define HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND 0xC037010Eu
#define HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_EXISTS 0xC037010Fu
#define HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_STOPPED 0xC0370110u
#define HCSB_E_VMCOMPUTE_INVALID_STATE 0x80370105u
#define HCSB_E_VMCOMPUTE_OPERATION_PENDING 0xC0370103u
#define HCSB_E_VMCOMPUTE_OPERATION_INVALID_STATE 0xC0370105u
#define HCSB_E_VMCOMPUTE_UNEXPECTED_EXIT 0xC0370106u
#define HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_STOPPED_HR 0x80370110u
#define HCSB_E_PROCESS_ALREADY_STOPPED 0x8037011Fu

/* Symbolic name of an HRESULT ("E_NOTIMPL", "VmcomputeSystemNotFound", ...)
 * for every value in protocol.md §10.2; NULL for values it does not know.
 * Names are the Windows SDK's for generic codes (S_OK, E_NOTIMPL, E_FAIL,
 * E_INVALIDARG; ERROR_NOT_FOUND for 0x80070490 and for the bare Win32 codes
 * ERROR_*) and hcsshim's without the Hr/Err prefix for compute codes
 * (VmcomputeTimeout, VmcomputeUnknownMessage,
 * VmcomputeUnsupportedProtocolVersion, VmcomputeInvalidJson,
 * VmcomputeSystemNotFound, VmcomputeSystemAlreadyExists,
 * VmcomputeSystemAlreadyStopped, VmcomputeInvalidState,
 * VmcomputeOperationPending, VmcomputeOperationInvalidState,
 * VmcomputeUnexpectedExit, VmcomputeSystemAlreadyStoppedHr for 0x80370110,
 * ProcessAlreadyStopped). */
HCSB_EXTERN const char *hcsb_hresult_name(uint32_t hresult);

/* Formats a guest error as one line, e.g.
 * "guest error 0xC037010E (VmcomputeSystemNotFound): container x not found".
 * Writes at most `len` bytes including the terminating NUL; returns the
 * length it would have written (like snprintf). */
HCSB_EXTERN int hcsb_guest_error_format(const hcsb_guest_error_t *err,
                                        char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Message identifiers (protocol.md §3.4-§3.6) */

#define HCSB_MSG_TYPE_MASK 0xF0000000u
#define HCSB_MSG_TYPE_REQUEST 0x10000000u
#define HCSB_MSG_TYPE_RESPONSE 0x20000000u
#define HCSB_MSG_TYPE_NOTIFY 0x30000000u
#define HCSB_MSG_CATEGORY_MASK 0x0FF00000u
#define HCSB_MSG_CATEGORY_COMPUTE_SYSTEM 0x00100000u
#define HCSB_MSG_CATEGORY_COMPUTE_SERVICE 0x00200000u
#define HCSB_MSG_ID_MASK 0x000FFF00u
#define HCSB_MSG_VERSION_MASK 0x000000FFu

typedef enum hcsb_msg_e {
  HCSB_MSG_CREATE = 0x10100101u,
  HCSB_MSG_START = 0x10100201u,
  HCSB_MSG_SHUTDOWN_GRACEFUL = 0x10100301u,
  HCSB_MSG_SHUTDOWN_FORCED = 0x10100401u,
  HCSB_MSG_EXECUTE_PROCESS = 0x10100501u,
  HCSB_MSG_WAIT_FOR_PROCESS = 0x10100601u,
  HCSB_MSG_SIGNAL_PROCESS = 0x10100701u,
  HCSB_MSG_RESIZE_CONSOLE = 0x10100801u,
  HCSB_MSG_GET_PROPERTIES = 0x10100901u,
  HCSB_MSG_MODIFY_SETTINGS = 0x10100a01u,
  HCSB_MSG_NEGOTIATE_PROTOCOL = 0x10100b01u,
  HCSB_MSG_DUMP_STACKS = 0x10100c01u,
  HCSB_MSG_DELETE_CONTAINER_STATE = 0x10100d01u,
  HCSB_MSG_UPDATE_CONTAINER = 0x10100e01u, /* historic; Linux: E_NOTIMPL */
  HCSB_MSG_LIFECYCLE_NOTIFICATION = 0x10100f01u,  /* unused; Linux: E_NOTIMPL */
  HCSB_MSG_MODIFY_SERVICE_SETTINGS = 0x10200101u, /* Windows guests only */

  HCSB_MSG_CREATE_RESPONSE = 0x20100101u,
  HCSB_MSG_START_RESPONSE = 0x20100201u,
  HCSB_MSG_SHUTDOWN_GRACEFUL_RESPONSE = 0x20100301u,
  HCSB_MSG_SHUTDOWN_FORCED_RESPONSE = 0x20100401u,
  HCSB_MSG_EXECUTE_PROCESS_RESPONSE = 0x20100501u,
  HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE = 0x20100601u,
  HCSB_MSG_SIGNAL_PROCESS_RESPONSE = 0x20100701u,
  HCSB_MSG_RESIZE_CONSOLE_RESPONSE = 0x20100801u,
  HCSB_MSG_GET_PROPERTIES_RESPONSE = 0x20100901u,
  HCSB_MSG_MODIFY_SETTINGS_RESPONSE = 0x20100a01u,
  HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE = 0x20100b01u,
  HCSB_MSG_DUMP_STACKS_RESPONSE = 0x20100c01u,
  HCSB_MSG_DELETE_CONTAINER_STATE_RESPONSE = 0x20100d01u,
  HCSB_MSG_UPDATE_CONTAINER_RESPONSE = 0x20100e01u,
  HCSB_MSG_LIFECYCLE_NOTIFICATION_RESPONSE = 0x20100f01u,
  HCSB_MSG_MODIFY_SERVICE_SETTINGS_RESPONSE = 0x20200101u,

  HCSB_MSG_NOTIFY_CONTAINER = 0x30100101u
} hcsb_msg_t;

/* GetResponseIdentifier: 0x20000000 | (type & 0x0FFFFFFF). */
HCSB_EXTERN uint32_t hcsb_msg_response_type(uint32_t request_type);

/* "NegotiateProtocol", "NegotiateProtocolResponse", "ContainerNotification";
 * NULL for an identifier not in protocol.md §3.5. */
HCSB_EXTERN const char *hcsb_msg_name(uint32_t type);

/* ------------------------------------------------------------------------ */
/* Well-known values */

#define HCSB_NULL_CONTAINER_ID "00000000-0000-0000-0000-000000000000"
#define HCSB_ZERO_GUID "00000000-0000-0000-0000-000000000000"
#define HCSB_PROTOCOL_VERSION 4
#define HCSB_INFINITE_WAIT 0xFFFFFFFFu

#define HCSB_PORT_ENTROPY 1u
#define HCSB_PORT_LOG 109u
#define HCSB_PORT_BRIDGE 0x40000000u
#define HCSB_PORT_FIRST_STDIO 0x40000001u
#define HCSB_PORT_PLAN9 564u
#define HCSB_ENTROPY_BYTES 512u

#define HCSB_DEFAULT_MAX_FRAME (16u * 1024u * 1024u)

/* hvsocket service GUID of a vsock port: "%08x-facb-11e6-bd58-64006a7986d3".
 * `out` receives 36 characters and a NUL. */
HCSB_EXTERN void hcsb_hvsock_service_id(uint32_t port, char out[37]);
/* The reverse: returns 0 and sets *port when `guid` is a vsock template GUID
 * (case-insensitive), -EINVAL otherwise. */
HCSB_EXTERN int hcsb_hvsock_port_from_service_id(const char *guid,
                                                 uint32_t *port);
/* The 16-byte binary GUID layout (Data1..3 little-endian) of the service ID. */
HCSB_EXTERN void hcsb_hvsock_service_id_bytes(uint32_t port, uint8_t out[16]);

/* ------------------------------------------------------------------------ */
/* Logging */

typedef enum hcsb_log_level_e {
  HCSB_LOG_ERROR = 0,
  HCSB_LOG_WARN = 1,
  HCSB_LOG_INFO = 2,
  HCSB_LOG_DEBUG = 3,
  HCSB_LOG_TRACE = 4, /* every frame, both directions; the bodies of Create
                         and ExecuteProcess are withheld: they carry process
                         environments, which may hold secrets */
  HCSB_LOG_TRACE_SECRETS = 5 /* TRACE with those bodies too (as TRACE) */
} hcsb_log_level_t;

/* `activity_id` is the ActivityId of the call the message concerns, or NULL.
 * `msg` is only valid during the callback. */
typedef void (*hcsb_log_cb)(void *data, hcsb_log_level_t level,
                            const char *activity_id, const char *msg);

#ifdef __cplusplus
}
#endif
#endif /* HCSBRIDGE_COMMON_H */
