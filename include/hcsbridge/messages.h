/* hcsbridge — addresses and message structs.  Pure data: no I/O, no libuv,
 * so the protocol core and peers written against it need only this. */
#ifndef HCSBRIDGE_MESSAGES_H
#define HCSBRIDGE_MESSAGES_H

#include <hcsbridge/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Addresses
 *
 * One syntax names every way a bridge (and its stdio relays) reach a guest.
 * By default the host *listens* and the guest dials, as the protocol does;
 * the "+connect" schemes make the host dial instead.
 *
 *   vsock://CID:PORT              listen on AF_VSOCK; CID is ANY or a number;
 *                                 PORT defaults to 1073741824 (0x40000000)
 *                                 options: ?peer=CID (accept only that CID)
 *   vsock+connect://CID:PORT      dial a guest that listens
 *   hvsock+fc://PATH[:PORT]       hybrid vsock (Firecracker/Cloud Hypervisor),
 *                                 guest-initiated: listen on PATH_PORT
 *   hvsock+fc+connect://PATH[:PORT] hybrid vsock, host-initiated: connect to
 *                                 the VM's socket PATH, send "CONNECT PORT\n",
 *                                 expect "OK <n>\n"
 *   unix://PATH                   listen on a Unix socket
 *   unix+connect://PATH           connect to a Unix socket
 *   fd://N                        adopt an already-connected descriptor
 *   spawn:COMMAND                 run COMMAND with /bin/sh -c; its stdin and
 *                                 stdout carry the bridge (gcs -use-inouterr)
 *
 * Common options, appended as ?key=value&key=value (not for spawn:, which
 * takes everything after the colon as the command):
 *   timeout=MS     accept/dial/handshake timeout (default 120000, 0 = none)
 *   stdio=DIR      directory for the stdio relay listeners <DIR>/<port>.sock
 *                  (unix and fd transports; a spawn: address takes its
 *                  directory in hcsb_addr_t.stdio_dir, set after parsing)
 *
 * Parsing is strict (anything else is -EINVAL): schemes and option names
 * are lower case; numbers are decimal or 0x-hexadecimal, without sign or
 * spaces, and must fit 32 bits (fd: decimal, at most INT_MAX); CID ANY is
 * case-insensitive and equals 4294967295; a dialled CID and peer= must be
 * real CIDs, not ANY; each option at most once and only where listed
 * (peer: vsock://; stdio: unix and fd); the first '?' starts the options;
 * in hvsock PATH[:PORT] the text after the last ':' is the port, so a path
 * may contain ':' only when a port follows.  hcsb_addr_format() writes the
 * canonical form (port always present, default options omitted) and
 * returns -EINVAL for addresses the syntax cannot express (a '?' in a path,
 * a '&' in the stdio dir).
 *
 * Stdio relays listen where the bridge's transport says: a vsock port, the
 * Unix socket <stdio-dir>/<port>.sock, or <PATH>_<port> for hybrid vsock.
 * Each such socket file is removed once its one connection came (or the
 * process went); a directory only your user can write to (no group or
 * other write bit) costs the least per relay, since files there need no
 * check that they are still the library's own before they are removed.
 * Every connection numbers its relays from the same first port, so give
 * each one a directory of its own: two whose directories coincide (two
 * unix:// sockets in one directory and no stdio=) collide on the first
 * process's socket file: the second one's create fails (-EADDRINUSE), and
 * the connect() by which it first checks whether the file is stale can
 * take the other connection's relay.
 * For spawn: the library exports HCSB_STDIO_DIR=<dir> to the child, creating
 * a private directory when none was given.  The child leads a session and
 * process group of its own (a terminal's signals do not reach it), and the
 * bridge owns that group: closing a negotiated bridge gives the child 2 s
 * to exit after EOF, closing one that never negotiated none; then SIGKILL
 * goes to the whole group, as it does the moment the child itself exits.
 */

typedef enum hcsb_transport_e {
  HCSB_TRANSPORT_VSOCK = 1,
  HCSB_TRANSPORT_HVSOCK_HYBRID = 2,
  HCSB_TRANSPORT_UNIX = 3,
  HCSB_TRANSPORT_FD = 4,
  HCSB_TRANSPORT_SPAWN = 5
} hcsb_transport_t;

#define HCSB_VSOCK_CID_ANY 0xFFFFFFFFu
#define HCSB_ADDR_PATH_MAX 108
#define HCSB_ADDR_COMMAND_MAX 4096

typedef struct hcsb_addr_s {
  hcsb_transport_t transport;
  int listen;       /* 1: host listens, guest dials; 0: host dials */
  uint32_t cid;     /* vsock: CID to bind or dial (HCSB_VSOCK_CID_ANY) */
  uint32_t port;    /* vsock and hybrid: the bridge port */
  int has_peer_cid; /* vsock listen: filter accepted peers by CID */
  uint32_t peer_cid;
  int fd;                        /* fd:// */
  uint32_t timeout_ms;           /* accept/dial/handshake timeout; 0 = none */
  char path[HCSB_ADDR_PATH_MAX]; /* unix and hybrid socket path */
  char stdio_dir[HCSB_ADDR_PATH_MAX];  /* "" = default */
  char command[HCSB_ADDR_COMMAND_MAX]; /* spawn: */
} hcsb_addr_t;

/* Parses `address` into `*out`.  Pure: no I/O, no allocation.
 * Returns 0, or -EINVAL (malformed, unknown scheme or option, out-of-range
 * number) or -ENAMETOOLONG (a path or command does not fit). */
HCSB_EXTERN int hcsb_addr_parse(const char *address, hcsb_addr_t *out);

/* Formats `addr` back into the syntax above (snprintf semantics). */
HCSB_EXTERN int hcsb_addr_format(const hcsb_addr_t *addr, char *buf,
                                 size_t len);

/* ------------------------------------------------------------------------ */
/* Messages */

/* A request.  Strings are borrowed: the bridge encodes the frame before
 * hcsb_bridge_call() returns, so they may be freed right after it. */
typedef struct hcsb_request_s {
  uint32_t type;            /* HCSB_MSG_* request identifier */
  const char *container_id; /* NULL: the null container ID */
  const char *activity_id;  /* NULL: the zero GUID */
  /* When non-NULL, sent as the whole body verbatim (raw_len bytes) and the
   * typed fields below are ignored.  For extensions and tests. */
  const char *raw_body;
  size_t raw_len;
  union {
    struct {
      uint32_t min_version, max_version;
    } negotiate;
    struct {
      const char *config; /* ContainerConfig JSON text (sent as a string) */
    } create;
    struct {
      const char *process_parameters; /* ProcessParameters JSON text */
      uint32_t stdin_port, stdout_port, stderr_port; /* 0 = not requested */
      int omit_relay_settings; /* 1: no VsockStdioRelaySettings object */
    } execute;
    struct {
      uint32_t pid;
      uint32_t timeout_ms; /* HCSB_INFINITE_WAIT for none */
    } wait;
    struct {
      uint32_t pid;
      int signal; /* > 0: Options {"Signal":n}; <= 0: no Options (SIGKILL) */
    } signal;
    struct {
      uint32_t pid;
      uint16_t height, width;
    } resize;
    struct {
      const char
          *query; /* Query JSON text, e.g. {"PropertyTypes":["ProcessList"]} */
    } get_properties;
    struct {
      const char *request; /* ModificationRequest JSON object text (nested) */
    } modify;
    struct {
      const char *property_type; /* e.g. "LogForwardService" */
      const char *settings;      /* Settings JSON object text (nested) */
    } service;
  } u;
  /* OpenCensus span context object text, sent after ActivityId as "ocsc"
   * (protocol.md §5.2; see hcsb_conn_set_span_context); NULL: none. */
  const char *ocsc;
} hcsb_request_t;

typedef struct hcsb_caps_s {
  int send_host_create_message;
  int send_host_start_message;
  int hvsocket_config_on_startup;
  int send_lifecycle_notifications;
  int modify_service_settings_supported;
  size_t nschema_versions;
  struct {
    uint32_t major, minor;
  } schema_versions[8];
  char runtime_os_type[32]; /* as the guest sent it, e.g. "Linux" */
  struct {
    int namespace_add_request_supported;
    int signal_process_supported;
    int dump_stacks_supported;
    int delete_container_state_supported;
    int update_container_supported;
    int log_forwarding_supported;
    int host_process_container_supported;
  } guest;
} hcsb_caps_t;

/* A decoded response.  Owned by the library, valid only during the callback
 * it is passed to.  Which typed fields are meaningful depends on `type`;
 * fields the guest did not send are zero/NULL. */
typedef struct hcsb_response_s {
  uint32_t type;           /* the response identifier received */
  uint64_t id;             /* SequenceID */
  uint32_t result;         /* HRESULT (0 = success) */
  const char *activity_id; /* echoed ActivityId, or NULL */
  const char *body;        /* the raw JSON body (not NUL-terminated) */
  size_t body_len;

  uint32_t version;        /* NegotiateProtocol */
  const hcsb_caps_t *caps; /* NegotiateProtocol */
  uint32_t process_id;     /* ExecuteProcess */
  int has_exit_code;       /* WaitForProcess */
  uint32_t exit_code;      /* WaitForProcess */
  const char *properties;  /* GetProperties: the JSON text inside the string */
  size_t properties_len;
  const char *guest_stacks; /* DumpStacks */
  size_t guest_stacks_len;
} hcsb_response_t;

typedef enum hcsb_notification_type_e {
  HCSB_NOTIFY_UNKNOWN = 0, /* absent or not in the table */
  HCSB_NOTIFY_NONE,
  HCSB_NOTIFY_GRACEFUL_EXIT,
  HCSB_NOTIFY_FORCED_EXIT,
  HCSB_NOTIFY_UNEXPECTED_EXIT,
  HCSB_NOTIFY_REBOOT,
  HCSB_NOTIFY_CONSTRUCTED,
  HCSB_NOTIFY_STARTED,
  HCSB_NOTIFY_PAUSED
} hcsb_notification_type_t;

/* A container notification (0x30100101).  Valid only during the callback. */
typedef struct hcsb_notification_s {
  const char *container_id; /* never NULL */
  const char *activity_id;  /* NULL when absent */
  const char *type;         /* the Type string, "" when absent */
  hcsb_notification_type_t kind;
  const char *operation;   /* the Operation string, "" when absent */
  uint32_t result;         /* HRESULT */
  const char *result_info; /* decoded ResultInfo JSON text, or NULL */
} hcsb_notification_t;

#ifdef __cplusplus
}
#endif
#endif /* HCSBRIDGE_MESSAGES_H */
