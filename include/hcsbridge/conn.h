/* hcsbridge — guest connection, containers and processes.
 *
 * The vocabulary mirrors hcsshim (GuestConnection, Container, Process,
 * ProcessConfig, ContainerConfig); the shape is libuv's: opaque handles,
 * (callback, data) on every asynchronous operation, close functions with
 * close callbacks.
 *
 * Rules for every asynchronous function in this file:
 *   - It returns 0 and its callback runs exactly once, later, from the loop;
 *     or it returns a negative errno (-EINVAL, -ENOMEM, -ENOBUFS, -ENOTSUP
 *     where the function says so) and the callback never runs.
 *   - Callback status: 0; HCSB_EGUEST with `gerr` describing the guest's
 *     error; -ETIMEDOUT (the call's timeout); -ECANCELED (the handle or the
 *     connection was closed by its owner); -ECONNRESET/-EPIPE (connection
 *     lost); -ENOTCONN (connection already gone); -EPROTO/-EMSGSIZE (the
 *     guest's answer was unusable).  Functions list the extra ones they have.
 *   - `gerr`, and every pointer handed to a callback, is valid only during
 *     the callback.
 *   - Handles stay valid until their close callback has run, even when the
 *     connection is lost; closing is always allowed, also from inside any
 *     callback, and completes pending operations of that handle with
 *     -ECANCELED before the close callback runs.  (The library's own
 *     WaitForProcess is not cancelled by closing a process handle: the
 *     guest's answer is still consumed, so the guest can clean up.)
 *   - Operations started on a handle that is closing complete with
 *     -ECANCELED on the next turn; on a connection that is lost, failed to
 *     open or was closed, with -ENOTCONN on the next turn.
 *   - A second close of the same handle does nothing.
 *   - Never orphaned guest work: when a container create or a process start
 *     ends with -ETIMEDOUT or -ECANCELED but the guest's Create or
 *     ExecuteProcess answer arrives later saying success, the library
 *     undoes it on its own (container: ShutdownForced, then
 *     DeleteContainerState when the guest supports it; process: SIGKILL,
 *     then WaitForProcess), tells nobody but the log (WARN), and counts it
 *     in hcsb_bridge_stats_t.orphans_reaped (hcsb_bridge_stats() on
 *     hcsb_conn_bridge()).  A connection lost or closed first ends this.
 *     A new create with the same container ID ends it for the earlier
 *     create: the retry owns the ID (if the earlier one did make the
 *     container, the guest refuses the retry and the caller sees that).
 *
 * Every operation takes `const hcsb_call_opts_t *opts` (NULL = defaults).
 * An `activity_id` that is not a canonical GUID is refused with -EINVAL;
 * one in upper or mixed case is sent (and logged) in lower case, as GUIDs
 * compare regardless of case.
 */
#ifndef HCSBRIDGE_CONN_H
#define HCSBRIDGE_CONN_H

#include <sys/types.h>

#include <hcsbridge/bridge.h>
#include <hcsbridge/metrics.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcsb_conn_s hcsb_conn_t;
typedef struct hcsb_container_s hcsb_container_t;
typedef struct hcsb_process_s hcsb_process_t;

/* Per-call options.  timeout_ms 0 means the connection's default for this
 * kind of call (call_timeout_ms, or shutdown_timeout_ms for Shutdown and
 * Terminate), not "none" as in hcsb_conn_options_t: a call that must not
 * time out while the connection's default is set passes UINT32_MAX (about
 * 49 days).  The span context a call carries is set on the connection
 * (hcsb_conn_set_span_context). */
typedef struct hcsb_call_opts_s {
  const char *activity_id; /* NULL: a fresh random GUID (libuuid) per call */
  uint32_t timeout_ms; /* 0: the connection's default for this kind of call */
} hcsb_call_opts_t;

/* Completion without a payload. */
typedef void (*hcsb_done_cb)(void *data, int status,
                             const hcsb_guest_error_t *gerr);

/* Frees memory the library handed to the caller (builders below). */
HCSB_EXTERN void hcsb_free(void *p);

/* ------------------------------------------------------------------------ */
/* Guest connection (one per utility VM) */

/* One record of the GCS log stream (vsock port 109): newline-delimited JSON
 * logrus records.  Fields are NULL when absent; a line that is not JSON (a Go
 * panic trailer, say) arrives with only `line` set. */
typedef struct hcsb_guest_log_record_s {
  const char *line; /* the whole line, without the newline */
  size_t line_len;
  const char *time;
  const char *level;
  const char *msg;
} hcsb_guest_log_record_t;

typedef void (*hcsb_guest_log_cb)(void *data,
                                  const hcsb_guest_log_record_t *record);

typedef struct hcsb_conn_options_s {
  /* Transport address (the syntax: hcsb_addr_parse() in messages.h).
   * Ignored by hcsb_conn_open_bridge. */
  const char *address;
  /* Timeouts in ms.  0 means none (in hcsb_call_opts_t, 0 means "this
   * default" instead).
   * connect_timeout_ms bounds hcsb_conn_open from the call to the
   * negotiated bridge: accept or dial, then NegotiateProtocol.  A
   * ?timeout= in the address bounds the accept or dial alone; when both
   * are set, whichever expires first fails the open with -ETIMEDOUT.
   * Without ?timeout= only connect_timeout_ms applies (the address
   * syntax's default of 120000 is not used by hcsb_conn_open), so 0 here
   * really waits forever.  hcsb_conn_open_bridge: the bridge's address was
   * the caller's; connect_timeout_ms bounds the wait for its negotiation. */
  uint32_t connect_timeout_ms;      /* default 120000 */
  uint32_t call_timeout_ms;         /* default for RPCs; default 300000 */
  uint32_t shutdown_timeout_ms;     /* Shutdown/Terminate; default 30000 */
  uint32_t stdio_accept_timeout_ms; /* guest's dial of a relay; default 30000 */
  /* Bring-up helpers (protocol.md §2.2-§2.3), each optional, on the same
   * listening transport as the bridge: */
  int entropy; /* listen on port 1; write 512 random bytes to the dialer */
  hcsb_guest_log_cb guest_log_cb; /* listen on port 109; records to this */
  void *guest_log_data;
  /* Library logging. */
  hcsb_log_cb log_cb;
  void *log_data;
  hcsb_log_level_t log_level;
  /* Limits handed to the bridge (0 = bridge defaults). */
  uint32_t max_frame;
  size_t max_pending;
  size_t max_write_queue;
} hcsb_conn_options_t;

/* Fills `o` with the defaults above. */
HCSB_EXTERN void hcsb_conn_options_init(hcsb_conn_options_t *o);

typedef void (*hcsb_conn_open_cb)(void *data, hcsb_conn_t *conn, int status,
                                  const hcsb_guest_error_t *gerr);

/* Opens a connection to the guest at opts->address: opens the bring-up
 * listeners and the bridge transport, accepts (or dials), negotiates.  When
 * this returns 0 every listener is already bound, so a VM manager may start
 * the VM right away.  `cb` (may be NULL) runs once: status 0 when
 * negotiated; -ETIMEDOUT after connect_timeout_ms; -ECANCELED when closed
 * first; HCSB_EGUEST or -EPROTO when negotiation failed; -ENOMSG when the
 * peer sent requests instead of answering (not a GCS); -ECONNRESET or a
 * transport error when the connection went away.  On failure the
 * connection is still valid and must be closed.  *out is set on 0.
 * Returns -EINVAL (no address, or a malformed one), -ENAMETOOLONG, -ENOMEM,
 * or the error of a listener that could not be opened (nothing is left to
 * close then). */
HCSB_EXTERN int hcsb_conn_open(uv_loop_t *loop, const hcsb_conn_options_t *opts,
                               hcsb_conn_open_cb cb, void *data,
                               hcsb_conn_t **out);

/* Wraps a bridge that was created and connected (or is connecting) by the
 * caller; the connection takes ownership and closes it, and replaces the
 * bridge's notify and disconnect callbacks (the caller's ready callback
 * still runs).  `cb` runs once the bridge is negotiated (on the next turn if
 * it already is; -ENOTCONN if it is already dead).  Stdio relays and the
 * bring-up listeners use hcsb_bridge_address(): -EINVAL when bring-up is
 * asked for and the bridge has no listening address (the bridge then stays
 * the caller's). */
HCSB_EXTERN int hcsb_conn_open_bridge(hcsb_bridge_t *bridge,
                                      const hcsb_conn_options_t *opts,
                                      hcsb_conn_open_cb cb, void *data,
                                      hcsb_conn_t **out);

/* Closes the connection on this side only: no Shutdown, kill or delete is
 * sent, so containers and processes are left as they are in the guest;
 * the host lets go of the processes' stdio streams and listeners, the
 * bring-up listeners and the bridge.  (What the guest does once its bridge
 * is gone is its own: a v0.11 GCS exits, which stops the utility VM
 * (protocol.md §2.4); the emulator ends its session and kills what it
 * started.)
 * Every pending operation of the connection, its containers and its
 * processes completes with -ECANCELED; container waits with end CLOSED and
 * -ECANCELED; process waits with -ECANCELED, and exit codes become
 * -ENODATA.  Container and process handles still open stay valid: reading
 * them works, new operations on them complete with -ENOTCONN on the next
 * turn, and each must still be closed.  `cb` runs (on a later turn, once
 * the bridge and listeners are closed) without waiting for those handles:
 * it may run while process handles are still open; the connection's
 * memory goes once the last of them is closed.  The lost callback is not
 * called for this.  A second call does nothing. */
HCSB_EXTERN void hcsb_conn_close(hcsb_conn_t *conn, hcsb_close_cb cb,
                                 void *data);

/* The bridge (NULL once the connection is closing). */
HCSB_EXTERN hcsb_bridge_t *hcsb_conn_bridge(const hcsb_conn_t *conn);
HCSB_EXTERN uv_loop_t *hcsb_conn_loop(const hcsb_conn_t *conn);
/* NULL until negotiated; kept (readable) after loss and close. */
HCSB_EXTERN const hcsb_caps_t *hcsb_conn_caps(const hcsb_conn_t *conn);
/* The negotiated protocol version (4); 0 until negotiated and after a
 * failed open; kept after loss and close. */
HCSB_EXTERN uint32_t hcsb_conn_protocol(const hcsb_conn_t *conn);
/* "linux" or "windows" (RuntimeOsType lower-cased; empty means windows);
 * "" until negotiated and after a failed open; kept after loss and close. */
HCSB_EXTERN const char *hcsb_conn_os(const hcsb_conn_t *conn);
HCSB_EXTERN void hcsb_conn_set_data(hcsb_conn_t *conn, void *data);
HCSB_EXTERN void *hcsb_conn_get_data(const hcsb_conn_t *conn);

/* Runs once when a negotiated connection ends for any reason other than
 * hcsb_conn_close() (status -ECONNRESET or -EPIPE), like hcsshim's
 * GuestConnection wait.  Never when the open failed or the connection was
 * lost before it was negotiated (the open callback reports that), nor once
 * hcsb_conn_close() was called.  It runs from the loop when the bridge
 * reports the loss: after the operations that were pending got their
 * callbacks, and before any container wait's callback (those complete
 * with end CONNECTION_LOST on a later turn), so the connection may be
 * closed from inside it.  Pass NULL to unregister. */
typedef void (*hcsb_conn_lost_cb)(void *data, hcsb_conn_t *conn, int status);
HCSB_EXTERN void hcsb_conn_set_lost_cb(hcsb_conn_t *conn, hcsb_conn_lost_cb cb,
                                       void *data);

/* Every container notification (0x30100101) the guest sends, as it came:
 * also for containers this connection has no handle or registration for,
 * and repeated ones the library ignores.  The bridge's own notify hook is
 * the connection's (hcsb_conn_open_bridge takes it over), so this is where
 * a caller watches them.  Runs from the loop after the library applied the
 * notification to its container waits (whose callbacks run on a later
 * turn); `n` is valid during the call only; the connection may be closed
 * from inside.  Not called once hcsb_conn_close() was called.  NULL
 * unregisters. */
typedef void (*hcsb_conn_notify_cb)(void *data, hcsb_conn_t *conn,
                                    const hcsb_notification_t *n);
HCSB_EXTERN void hcsb_conn_set_notify_cb(hcsb_conn_t *conn,
                                         hcsb_conn_notify_cb cb, void *data);

/* Tracing.  Every request carries an ActivityId (hcsb_call_opts_t: the
 * caller's, or a fresh random GUID per call); the guest logs it and tags its
 * span with it.  Besides, a v0.11 guest parents the span it opens for a
 * request on the OpenCensus span context sent as the request's `ocsc`
 * (protocol.md §5.2), which hcsshim fills from the caller's current span. */
typedef struct hcsb_tracestate_entry_s {
  const char *key;   /* [a-z][a-z0-9_-*\/]* (or tenant@vendor), <= 256 */
  const char *value; /* printable ASCII without ',' and '=', 1..256 */
} hcsb_tracestate_entry_t;

typedef struct hcsb_span_context_s {
  uint8_t trace_id[16];                      /* not all zero */
  uint8_t span_id[8];                        /* not all zero */
  uint32_t trace_options;                    /* bit 0: sampled */
  const hcsb_tracestate_entry_t *tracestate; /* at most 32 distinct keys */
  size_t ntracestate;
} hcsb_span_context_t;

/* Sets the span context (copied; NULL: none, the default) that operations
 * started from now on carry, on this connection and its containers and
 * processes.  An operation takes the one in effect when it is started and
 * sends it with each of its requests, also the later ones (a container
 * create's ModifySettings and Create, a signal held until its process
 * exists, the library's own WaitForProcess of a process it created), so:
 *   per connection: set it once;
 *   per call: set the call's context, start the call, set the previous
 *   one back (the call keeps its own).
 * Returns 0, -EINVAL (an all-zero trace or span ID, or a tracestate the
 * guest's OpenCensus would reject: it would drop the whole tracestate),
 * -ENOBUFS (65536 distinct contexts still held by pending operations),
 * -ENOMEM.  On failure the previous context stays in effect.  A main-branch
 * guest reads `otsc` instead and ignores `ocsc`. */
HCSB_EXTERN int hcsb_conn_set_span_context(hcsb_conn_t *conn,
                                           const hcsb_span_context_t *sc);

/* ModifySettings on the null container with a ModificationRequest JSON
 * object text (see the builders below; copied, free it when this returns).
 * A successful MappedVirtualDisk Add/Remove is recorded for
 * hcsb_conn_mapped_virtual_disks(), also when the caller closed first.
 * A successful CombinedLayers Add naming a ContainerID is tracked as that
 * container's (see "Container resources" below); a successful Remove of
 * a disk, share, VPMem mount, overlay or adapter ends its tracking for
 * whichever container held it.
 * Returns -EINVAL when the text is not a JSON object, or is a
 * MappedVirtualDisk request whose Settings are not what the guest reads. */
HCSB_EXTERN int hcsb_conn_modify(hcsb_conn_t *conn,
                                 const hcsb_call_opts_t *opts,
                                 const char *request_json, hcsb_done_cb cb,
                                 void *data);

/* hcsb_conn_modify for a resource one container needs, before or after
 * its create (hcsshim maps a container's layer disks and VPMem devices
 * first): a successful Add is tracked as `container_id`'s, and its delete
 * removes it (see "Container resources").  Returns -EINVAL also when the
 * request is not an Add of a MappedVirtualDisk, MappedDirectory,
 * VPMemDevice, CombinedLayers or Network resource with what names it
 * (disk: Controller/Lun; share, VPMem: MountPath; overlay:
 * ContainerRootPath; adapter: NamespaceID/ID). */
HCSB_EXTERN int hcsb_conn_modify_for_container(hcsb_conn_t *conn,
                                               const hcsb_call_opts_t *opts,
                                               const char *container_id,
                                               const char *request_json,
                                               hcsb_done_cb cb, void *data);

/* DumpStacks: `stacks` is the guest's text (NUL-terminated; NULL unless
 * status is 0).  Returns -ENOTSUP when the guest does not advertise
 * DumpStacksSupported. */
typedef void (*hcsb_stacks_cb)(void *data, int status,
                               const hcsb_guest_error_t *gerr,
                               const char *stacks, size_t len);
HCSB_EXTERN int hcsb_conn_dump_stacks(hcsb_conn_t *conn,
                                      const hcsb_call_opts_t *opts,
                                      hcsb_stacks_cb cb, void *data);

/* Container resources (hcsshim's hcsoci bookkeeping).
 *
 * The library tracks, per container ID on this connection, every resource
 * a ModifySettings Add put in the guest for that container: what
 * hcsb_conn_create_container added (mapped virtual disks, mapped
 * directories, the CombinedLayers overlay, network adapters), what the
 * caller added for it with hcsb_conn_modify_for_container, and the
 * CombinedLayers Adds with that ContainerID sent through hcsb_conn_modify.  The
 * record belongs to the ID, not to a handle: it survives hcsb_container_close
 * and is seen again by hcsb_conn_open_container.  It is not persisted: another
 * connection (a new hcsbctl run, say) knows nothing of it.
 *   - A create that fails removes what it added, newest first, before its
 *     callback runs; see hcsb_conn_create_container.
 *   - Deleting releases every tracked resource, newest first, before
 *     DeleteContainerState: a real guest cannot delete the state of a
 *     container whose overlay is still mounted (E_FAIL "unlinkat
 *     /run/gcs/c/<id>: directory not empty").
 *   - A successful Remove through hcsb_conn_modify ends the tracking of
 *     that resource (the caller released it).
 *   - Once the guest deleted the state, the ID's record is forgotten.
 * Only the guest side is undone: the VM document changes that made a disk,
 * share or NIC visible (HCS attach) remain the caller's to revert. */

/* Resources currently tracked for `container_id` (0 for an unknown ID). */
HCSB_EXTERN size_t hcsb_conn_container_resources(const hcsb_conn_t *conn,
                                                 const char *container_id);

/* Skip the release: send DeleteContainerState only, and leave the tracked
 * resources in the guest for the caller to remove; they are forgotten
 * once the state is deleted. */
#define HCSB_DELETE_KEEP_RESOURCES 0x1u

/* Deletes a container the way hcsshim tears one down: ModifySettings
 * Remove for each tracked resource of `container_id`, newest first, then
 * DeleteContainerState, all with the call's ActivityId and each with its
 * timeout.  A Remove that fails does not stop the others; the resources
 * that could not be removed stay tracked, DeleteContainerState is not sent
 * and the callback gets the first failure (status and `gerr`), so a later
 * delete retries only what is left.  Otherwise the status is
 * DeleteContainerState's (0xC037010E: the guest does not know the ID).  On
 * success the connection forgets the container's notification
 * registration (unless a handle is still open), so the ID may be created
 * again.  A pending delete is cancelled only by closing the connection;
 * what it had not removed yet stays tracked.  `flags`: 0 or
 * HCSB_DELETE_KEEP_RESOURCES.  Returns -EINVAL (no ID, unknown flags),
 * -ENOTSUP when the guest does not advertise
 * DeleteContainerStateSupported, -ENOMEM. */
HCSB_EXTERN int hcsb_conn_delete_container(hcsb_conn_t *conn,
                                           const hcsb_call_opts_t *opts,
                                           const char *container_id,
                                           unsigned flags, hcsb_done_cb cb,
                                           void *data);

/* hcsb_conn_delete_container with flags 0: tracked resources are released
 * first. */
HCSB_EXTERN int hcsb_conn_delete_container_state(hcsb_conn_t *conn,
                                                 const hcsb_call_opts_t *opts,
                                                 const char *container_id,
                                                 hcsb_done_cb cb, void *data);

/* ------------------------------------------------------------------------ */
/* Modify builders: each returns 0 and a ModificationRequest JSON text in
 * *json_out (free with hcsb_free), or -EINVAL / -ENOMEM.  -EINVAL also for
 * a request type the resource does not take on a Linux guest
 * (protocol.md §8.1: SCSIDevice Remove only, VPCIDevice Add only,
 * PodCgroupMemoryLimit Update only, ContainerConstraints/SecurityPolicy*
 * Add/Remove/Update, the others Add/Remove; PreAdd never), a controller above
 * 3, or a required field missing (mount path of a directory, root path of
 * layers, namespace and ID of an adapter, a canonical VMBus GUID). */

typedef enum hcsb_request_type_e {
  HCSB_REQUEST_ADD = 0,
  HCSB_REQUEST_REMOVE,
  HCSB_REQUEST_UPDATE,
  HCSB_REQUEST_PRE_ADD /* Windows networking only */
} hcsb_request_type_t;

typedef struct hcsb_mapped_virtual_disk_s {
  const char *mount_path; /* NULL/"" = attach only */
  uint8_t controller;     /* 0-3 */
  uint8_t lun;
  uint64_t partition;
  int read_only;
  int encrypted;
  int block_dev;
  int ensure_filesystem;
  const char *filesystem;
  const char *const *options; /* mount options */
  size_t noptions;
} hcsb_mapped_virtual_disk_t;

typedef struct hcsb_mapped_directory_s {
  const char *mount_path;
  uint32_t port; /* 564 */
  const char *share_name;
  int read_only;
} hcsb_mapped_directory_t;

typedef struct hcsb_vpmem_device_s {
  uint32_t device_number;
  const char *mount_path;
  int has_mapping; /* MappingInfo for packed devices */
  uint64_t device_offset_bytes;
  uint64_t device_size_bytes;
} hcsb_vpmem_device_t;

/* dm-verity metadata of a read-only device (hcsshim's DeviceVerityInfo),
 * sent as the Settings' VerityInfo so the guest maps the device through a
 * verity target (and a confidential guest's policy can check the layer's
 * root hash).  The v0.11.8 guest builds the table
 *   <version> <dev> <dev> <data_block> <hash_block> <data_blocks>
 *   <hash_start> <algorithm> <root_digest> <salt>
 * from seven JSON fields, so some of the eight dm-verity parameters are
 * tied together:
 *   - one BlockSize is used for both data and hash blocks: hash_block_size
 *     must be 0 or equal data_block_size;
 *   - the hash tree follows the data on the same device: hash_offset_bytes
 *     is Ext4SizeInBytes (the data size), a multiple of data_block_size,
 *     and with super_block the tree starts one block after it.
 * -EINVAL from the builders for anything the guest cannot express, a
 * missing root digest or algorithm, or a zero data_block_size (which
 * crashes that guest). */
typedef struct hcsb_verity_info_s {
  const char *root_digest;    /* RootDigest: hex root hash; required */
  const char *salt;           /* Salt: hex; NULL/"" = none */
  const char *hash_algorithm; /* Algorithm, e.g. "sha256"; required */
  uint32_t data_block_size;   /* BlockSize; required */
  uint32_t hash_block_size;   /* 0 or data_block_size */
  uint64_t hash_offset_bytes; /* Ext4SizeInBytes */
  int super_block;            /* SuperBlock: a verity superblock precedes
                                 the hash tree */
  uint32_t version;           /* Version: hash format (1 in practice) */
} hcsb_verity_info_t;

typedef struct hcsb_combined_layers_s {
  const char *container_id;
  const char *container_root_path; /* e.g. /run/gcs/c/<id>/rootfs */
  const char *const *layer_paths;  /* top first: the guest joins them
                                      into overlayfs' lowerdir as given
                                      (protocol.md §8.5) */
  size_t nlayers;
  const char *scratch_path; /* NULL/"" = read-only overlay */
} hcsb_combined_layers_t;

typedef struct hcsb_ip_config_s {
  const char *ip_address;
  uint8_t prefix_length;
} hcsb_ip_config_t;

typedef struct hcsb_route_s {
  const char *next_hop;
  const char *destination_prefix;
  uint16_t metric;
} hcsb_route_t;

/* Which LCOWNetworkAdapter document hcsb_modify_network_adapter writes.
 * The guest decodes the adapter with its own Go struct and silently drops
 * fields it does not know, so a request in the wrong shape is accepted and
 * the NIC comes up without addresses.  The negotiation does not tell the two
 * guests apart: the caller must know the guest image.
 *   HCSB_ADAPTER_SHAPE_V0_11 (0, the default): the flat shape of hcsshim
 *     v0.11.x guests (protocol.md §8): NamespaceID, ID, MacAddress,
 *     IPAddress, PrefixLength, GatewayAddress, IPv6Address,
 *     IPv6PrefixLength, IPv6GatewayAddress, DNSSuffix, DNSServerList,
 *     EnableLowMetric, EncapOverhead, VPCIAssigned.
 *   HCSB_ADAPTER_SHAPE_MAIN (1, opt-in): hcsshim main's shape with IPConfigs
 *     and Routes arrays and PolicyBasedRouting, for guests built from main.
 * Fields of the other shape are refused (-EINVAL) rather than dropped. */
#define HCSB_ADAPTER_SHAPE_V0_11 0
#define HCSB_ADAPTER_SHAPE_MAIN 1

typedef struct hcsb_network_adapter_s {
  int shape; /* HCSB_ADAPTER_SHAPE_*; 0 = what a v0.11.8 guest reads */
  const char *namespace_id;
  const char *id;
  const char *mac_address;
  const char *dns_suffix;      /* comma-separated */
  const char *dns_server_list; /* comma-separated */
  uint16_t encap_overhead;
  int vpci_assigned;
  int enable_low_metric;
  int policy_based_routing;           /* main shape only */
  const hcsb_ip_config_t *ip_configs; /* main shape only */
  size_t nip_configs;
  const hcsb_route_t *routes; /* main shape only */
  size_t nroutes;
  /* v0.11 shape only */
  const char *ip_address;
  uint8_t prefix_length;
  const char *gateway_address;
  const char *ipv6_address;
  uint8_t ipv6_prefix_length;
  const char *ipv6_gateway_address;
} hcsb_network_adapter_t;

typedef struct hcsb_security_policy_s {
  const char *enforcer_type;
  const char *encoded_security_policy; /* base64 */
  const char *encoded_uvm_reference;   /* base64 */
  const char *encoded_uvm_hash_envelope_reference;
} hcsb_security_policy_t;

HCSB_EXTERN int hcsb_modify_mapped_virtual_disk(
    hcsb_request_type_t rt, const hcsb_mapped_virtual_disk_t *d,
    char **json_out);
/* The same requests with dm-verity metadata (`verity` NULL: none, as the
 * builders above).  Give it on Remove too: the guest tears down the verity
 * target it made for the device.  A container's layer devices sent with
 * hcsb_conn_modify_for_container() are removed with the same settings. */
HCSB_EXTERN int hcsb_modify_mapped_virtual_disk_verity(
    hcsb_request_type_t rt, const hcsb_mapped_virtual_disk_t *d,
    const hcsb_verity_info_t *verity, char **json_out);
HCSB_EXTERN int hcsb_modify_vpmem_device_verity(
    hcsb_request_type_t rt, const hcsb_vpmem_device_t *d,
    const hcsb_verity_info_t *verity, char **json_out);
HCSB_EXTERN int hcsb_modify_scsi_device(hcsb_request_type_t rt,
                                        uint8_t controller, uint8_t lun,
                                        char **json_out);
HCSB_EXTERN int hcsb_modify_mapped_directory(hcsb_request_type_t rt,
                                             const hcsb_mapped_directory_t *d,
                                             char **json_out);
HCSB_EXTERN int hcsb_modify_vpmem_device(hcsb_request_type_t rt,
                                         const hcsb_vpmem_device_t *d,
                                         char **json_out);
HCSB_EXTERN int hcsb_modify_combined_layers(hcsb_request_type_t rt,
                                            const hcsb_combined_layers_t *l,
                                            char **json_out);
HCSB_EXTERN int hcsb_modify_network_adapter(hcsb_request_type_t rt,
                                            const hcsb_network_adapter_t *a,
                                            char **json_out);
HCSB_EXTERN int hcsb_modify_vpci_device(hcsb_request_type_t rt,
                                        const char *vmbus_guid,
                                        char **json_out);
/* `linux_resources_json`: an OCI LinuxResources object text (or NULL);
 * `windows_json`: a Windows constraints object text (or NULL). */
HCSB_EXTERN int hcsb_modify_container_constraints(
    hcsb_request_type_t rt, const char *linux_resources_json,
    const char *windows_json, char **json_out);
HCSB_EXTERN int hcsb_modify_security_policy(hcsb_request_type_t rt,
                                            const hcsb_security_policy_t *p,
                                            char **json_out);
HCSB_EXTERN int hcsb_modify_security_policy_fragment(
    hcsb_request_type_t rt, const char *fragment_base64, const char *media_type,
    char **json_out);
HCSB_EXTERN int hcsb_modify_pod_cgroup_memory_limit(hcsb_request_type_t rt,
                                                    char **json_out);

/* The disks mapped through hcsb_conn_modify / container creation and not
 * removed since (the bridge has no RPC for this), one per (controller, lun,
 * partition).  Returns the count; *out (may be NULL) points to library
 * memory valid until the next modify completes. */
HCSB_EXTERN size_t hcsb_conn_mapped_virtual_disks(
    const hcsb_conn_t *conn, const hcsb_mapped_virtual_disk_t **out);

/* ------------------------------------------------------------------------ */
/* ProcessConfig (hcsshim's ProcessConfig) */

typedef struct hcsb_process_config_s {
  const char *application_name;    /* Windows only: -ENOTSUP when set */
  const char *command_line;        /* split by the guest (UVM processes) */
  const char *const *command_args; /* argv; preferred over command_line */
  size_t ncommand_args;
  const char *user; /* container processes: OCI user.username;
                       UVM processes: -ENOTSUP when set */
  const char *working_directory;
  const char *const *environment; /* "KEY=VALUE" strings */
  size_t nenvironment;
  int emulate_console; /* a pty; with it create_stderr_pipe is -EINVAL */
  int create_stdin_pipe;
  int create_stdout_pipe;
  int create_stderr_pipe;
  /* With emulate_console, the pty's size at start (0 and 0: leave it).  It
   * travels in the request: ConsoleSize for a UVM process (a Linux GCS
   * ignores it, protocol.md §7.4), the OCI consoleSize for an exec built
   * from these fields; a container's init and a caller's OCI process get
   * it by ResizeConsole once they exist. */
  uint16_t console_height;
  uint16_t console_width;
  int create_in_utility_vm;           /* run in the UVM even on a container */
  const char *oci_process_json;       /* container exec: the OCI process object;
                                         NULL: built from the fields above */
  const char *oci_specification_json; /* legacy v1 field: -ENOTSUP when set */
} hcsb_process_config_t;

/* ------------------------------------------------------------------------ */
/* ContainerConfig (what applies to a Linux guest) */

typedef struct hcsb_container_config_s {
  const char *id; /* NULL: a generated 64-hex-character ID */
  /* Raw ContainerConfig JSON text: sent as is; the typed V2 fields below and
   * the resources are then ignored. */
  const char *config_json;
  /* V2 settings (schema 2.1) */
  const char *oci_spec_json; /* OCI runtime spec object text; required */
  const char *bundle_path;   /* default /run/gcs/c/<id> */
  const char *scratch_dir;   /* ScratchDirPath; default none */
  const char *host_name;     /* overrides the spec's "hostname" */
  /* Resources set up with ModifySettings before Create, in hcsshim's order:
   * disks, mapped directories, combined layers, network adapters. */
  const hcsb_mapped_virtual_disk_t *mapped_virtual_disks;
  size_t nmapped_virtual_disks;
  const hcsb_mapped_directory_t *mapped_directories;
  size_t nmapped_directories;
  const char *const *layers; /* guest paths, top first (the wire order,
                                protocol.md §8.5): CombinedLayers Add */
  size_t nlayers; /* root: <bundle>/rootfs, spec root.path set to it */
  const char *layer_scratch_path;          /* CombinedLayers ScratchPath */
  const hcsb_network_adapter_t *endpoints; /* Network Add (NamespaceID taken
                                              from the spec when NULL) */
  size_t nendpoints;
  /* Windows-only ContainerConfig fields (LayerFolderPath, VolumePath,
   * IgnoreFlushesDuringBoot, Servicing, AllowUnqualifiedDNSQuery, Credentials,
   * ProcessorWeight/Count, StorageIOPS/Bandwidth, HvPartition, HvRuntime,
   * MemoryMaximumInMB, DNSSearchList, ...) have no meaning for a Linux guest
   * and are not represented. */
} hcsb_container_config_t;

/* ------------------------------------------------------------------------ */
/* Containers */

typedef void (*hcsb_container_cb)(void *data, hcsb_container_t *c, int status,
                                  const hcsb_guest_error_t *gerr);

/* Runs the ModifySettings calls for the config's resources, then Create,
 * one after the other.  The first failure ends the sequence: the resources
 * added before it are removed again, newest first (ModifySettings Remove),
 * and only then does the callback run, with the failure that ended the
 * create (a Remove that fails is logged and stays tracked for
 * hcsb_conn_delete_container).  When the handle is closed or the
 * connection goes while the create runs, what was added stays tracked
 * under the ID (see "Container resources").  Successful resources are
 * tracked for the delete.  *out is set when 0 is returned; on failure the
 * handle must still be closed.  The notification
 * waiter is registered before Create is sent.  The callback also reports
 * -ENOTSUP when endpoints are given and the guest lacks
 * NamespaceAddRequestSupported (nothing is sent then).  Returns -EINVAL
 * (no config_json and no oci_spec_json, a text that is not a JSON object,
 * an empty ID), -EEXIST (a handle for the ID is open on this connection),
 * -ENAMETOOLONG (bundle path), -ENOMEM. */
HCSB_EXTERN int hcsb_conn_create_container(
    hcsb_conn_t *conn, const hcsb_call_opts_t *opts,
    const hcsb_container_config_t *config, hcsb_container_cb cb, void *data,
    hcsb_container_t **out);

/* Attaches to a container that already exists in the guest (no RPC).
 * Returns -EEXIST when this connection already has a handle for `id`.  A
 * container whose notification already arrived on this connection (before
 * an earlier handle was closed) is reported as ended to waits. */
HCSB_EXTERN int hcsb_conn_open_container(hcsb_conn_t *conn, const char *id,
                                         hcsb_container_t **out);

HCSB_EXTERN const char *hcsb_container_id(const hcsb_container_t *c);
HCSB_EXTERN hcsb_conn_t *hcsb_container_conn(const hcsb_container_t *c);
/* hcsshim's Container.OS(): the guest's OS as hcsb_conn_os() reports it
 * ("linux", "windows"; "" until the connection is negotiated). */
HCSB_EXTERN const char *hcsb_container_os(const hcsb_container_t *c);
/* hcsshim's Container.IsOCI(): 1 when its processes are described by OCI
 * specs (every guest but Windows: hcsb_container_create_process builds an
 * OciProcess), 0 on a Windows guest, -ENOTCONN until the connection is
 * negotiated. */
HCSB_EXTERN int hcsb_container_is_oci(const hcsb_container_t *c);
HCSB_EXTERN void hcsb_container_set_data(hcsb_container_t *c, void *data);
HCSB_EXTERN void *hcsb_container_get_data(const hcsb_container_t *c);

/* Start (a no-op on Linux guests, sent for parity).  Default timeout:
 * call_timeout_ms; Shutdown/Terminate: shutdown_timeout_ms. */
HCSB_EXTERN int hcsb_container_start(hcsb_container_t *c,
                                     const hcsb_call_opts_t *opts,
                                     hcsb_done_cb cb, void *data);
/* ShutdownGraceful / ShutdownForced; neither waits for the exit.  The guest's
 * "not found" (0xC037010E) is reported as success, as hcsshim does. */
HCSB_EXTERN int hcsb_container_shutdown(hcsb_container_t *c,
                                        const hcsb_call_opts_t *opts,
                                        hcsb_done_cb cb, void *data);
HCSB_EXTERN int hcsb_container_terminate(hcsb_container_t *c,
                                         const hcsb_call_opts_t *opts,
                                         hcsb_done_cb cb, void *data);

typedef enum hcsb_container_end_e {
  HCSB_CONTAINER_EXITED = 1,          /* the guest's exit notification */
  HCSB_CONTAINER_CONNECTION_LOST = 2, /* the bridge died first */
  HCSB_CONTAINER_CLOSED = 3           /* hcsb_container_close() */
} hcsb_container_end_t;

typedef struct hcsb_container_exit_s {
  hcsb_container_end_t end;
  hcsb_notification_type_t type; /* EXITED: GracefulExit/ForcedExit/... */
  const char *type_name;         /* EXITED: the Type string */
  uint32_t result;               /* EXITED: the notification's Result */
} hcsb_container_exit_t;

/* Waits for the container to stop.  status 0 with exit->end EXITED when the
 * notification arrived; -ECONNRESET/-EPIPE with end CONNECTION_LOST (never a
 * fake success); -ECANCELED with end CLOSED; -ETIMEDOUT when `timeout_ms`
 * (0 = none) passed first (exit is NULL then; the container is still
 * waitable).  Any number of waits may be outstanding; once the container has
 * ended, later waits complete on the next turn with the same outcome. */
typedef void (*hcsb_container_wait_cb)(void *data, hcsb_container_t *c,
                                       int status,
                                       const hcsb_container_exit_t *exit);
HCSB_EXTERN int hcsb_container_wait(hcsb_container_t *c, uint32_t timeout_ms,
                                    hcsb_container_wait_cb cb, void *data);

/* Properties */
#define HCSB_PROPERTY_PROCESS_LIST 0x1u
#define HCSB_PROPERTY_STATISTICS 0x2u

typedef struct hcsb_process_list_item_s {
  uint32_t process_id;
  const char *image_name; /* NULL when the guest does not say */
  uint64_t kernel_time_100ns;
  uint64_t user_time_100ns;
  uint64_t memory_commit_bytes;
} hcsb_process_list_item_t;

/* hcsshim's Statistics, filled from the guest's LCOWMetrics (cgroup
 * metrics): a summary of hcsb_properties_t.metrics.  `has_*` tell which
 * groups the guest sent. */
typedef struct hcsb_statistics_s {
  int has_cpu;
  uint64_t cpu_total_ns;  /* cpu.usage.total */
  uint64_t cpu_user_ns;   /* cpu.usage.user */
  uint64_t cpu_kernel_ns; /* cpu.usage.kernel */
  uint64_t cpu_throttled_periods;
  uint64_t cpu_throttled_time_ns;
  int has_memory;
  uint64_t memory_usage_bytes;     /* memory.usage.usage */
  uint64_t memory_max_usage_bytes; /* memory.usage.max */
  uint64_t memory_limit_bytes;     /* memory.usage.limit */
  uint64_t memory_cache_bytes;     /* memory.cache */
  uint64_t memory_rss_bytes;       /* memory.rss */
  int has_pids;
  uint64_t pids_current;
  uint64_t pids_limit;
  int has_blkio;
  uint64_t blkio_read_bytes; /* sums of io_service_bytes_recursive */
  uint64_t blkio_write_bytes;
  uint64_t blkio_read_ops; /* sums of io_serviced_recursive */
  uint64_t blkio_write_ops;
} hcsb_statistics_t;

typedef struct hcsb_properties_s {
  int has_process_list;
  size_t nprocesses;
  const hcsb_process_list_item_t *processes;
  int has_statistics;
  hcsb_statistics_t statistics;
  /* The whole LCOWMetrics, typed (hcsbridge/metrics.h); NULL when the guest
   * sent none.  `statistics` above is its summary. */
  const hcsb_metrics_t *metrics;
  const char *json; /* the Properties JSON text as the guest sent it */
  size_t json_len;
} hcsb_properties_t;

typedef void (*hcsb_properties_cb)(void *data, int status,
                                   const hcsb_guest_error_t *gerr,
                                   const hcsb_properties_t *props);

/* GetProperties for `types` (HCSB_PROPERTY_* bits; -EINVAL for 0 or
 * unknown bits).  `props` and everything it points to are valid only during
 * the callback (the buffers are reused by the next answer).  A field of the
 * wrong type in the guest's text makes that call -EPROTO; unknown fields
 * are ignored, null is absent.  A warm call allocates nothing in this
 * layer. */
HCSB_EXTERN int hcsb_container_properties(hcsb_container_t *c,
                                          const hcsb_call_opts_t *opts,
                                          unsigned types, hcsb_properties_cb cb,
                                          void *data);
/* Shorthands: the same callback with only that property requested. */
HCSB_EXTERN int hcsb_container_statistics(hcsb_container_t *c,
                                          const hcsb_call_opts_t *opts,
                                          hcsb_properties_cb cb, void *data);
HCSB_EXTERN int hcsb_container_process_list(hcsb_container_t *c,
                                            const hcsb_call_opts_t *opts,
                                            hcsb_properties_cb cb, void *data);

/* ModifySettings against this container (Linux: ContainerConstraints).
 * -EINVAL when the text is not a JSON object. */
HCSB_EXTERN int hcsb_container_modify(hcsb_container_t *c,
                                      const hcsb_call_opts_t *opts,
                                      const char *request_json, hcsb_done_cb cb,
                                      void *data);

/* Present for parity with hcsshim's Container; no bridge RPC exists.  Each
 * returns 0 and completes with -ENOTSUP on the next loop turn. */
HCSB_EXTERN int hcsb_container_pause(hcsb_container_t *c,
                                     const hcsb_call_opts_t *opts,
                                     hcsb_done_cb cb, void *data);
HCSB_EXTERN int hcsb_container_resume(hcsb_container_t *c,
                                      const hcsb_call_opts_t *opts,
                                      hcsb_done_cb cb, void *data);
HCSB_EXTERN int hcsb_container_has_pending_updates(hcsb_container_t *c,
                                                   const hcsb_call_opts_t *opts,
                                                   hcsb_done_cb cb, void *data);
/* The disks this container's creation mapped and that are still mapped
 * (a failed create's undo and a delete unmap them; see the connection's). */
HCSB_EXTERN size_t hcsb_container_mapped_virtual_disks(
    const hcsb_container_t *c, const hcsb_mapped_virtual_disk_t **out);

/* Local release: nothing is sent, the container keeps running.  Pending
 * operations of this handle complete with -ECANCELED, waits with end CLOSED.
 * Processes created from it stay valid until their own close. */
HCSB_EXTERN void hcsb_container_close(hcsb_container_t *c, hcsb_close_cb cb,
                                      void *data);

/* ------------------------------------------------------------------------ */
/* Processes */

typedef void (*hcsb_process_cb)(void *data, hcsb_process_t *p, int status,
                                const hcsb_guest_error_t *gerr);

/* Creates a process in the UVM (ExecuteProcess on the null container).
 * For each requested stdio pipe a port is allocated and a listener opened on
 * the connection's transport *before* the request is sent; the guest's dial
 * is accepted with stdio_accept_timeout_ms.  `cb` runs when the process runs
 * and every requested stream is connected (status 0), or failed (the
 * listeners are closed then; a failed accept reports -ETIMEDOUT or the
 * accept error unless the guest's own error came first).  A WaitForProcess
 * (with this call's ActivityId and span context) is registered as soon as
 * the guest answered with the PID, also when a stream then failed.  *out
 * is set when 0 is returned; the handle must be
 * closed in every case, and may be used before `cb` (reads, writes and
 * waits start once possible; signals and resizes are held until the
 * process exists).
 * Returns -ENOTSUP (application_name, oci_specification_json, user) /
 * -EINVAL (no command, emulate_console with create_stderr_pipe, an
 * environment entry without '=', NULL array entries; pipes requested on a
 * connection with no place to listen for them) for what the Linux guest
 * cannot honour. */
HCSB_EXTERN int hcsb_conn_create_process(hcsb_conn_t *conn,
                                         const hcsb_call_opts_t *opts,
                                         const hcsb_process_config_t *config,
                                         hcsb_process_cb cb, void *data,
                                         hcsb_process_t **out);

/* Creates a process in the container.  With no oci_process_json, no
 * command_args and no command_line, this starts the container's init process
 * from the spec (do it once); otherwise it is an exec whose OCI process is
 * oci_process_json or is built from the config (args, env, cwd, terminal,
 * user, console size). */
HCSB_EXTERN int hcsb_container_create_process(
    hcsb_container_t *c, const hcsb_call_opts_t *opts,
    const hcsb_process_config_t *config, hcsb_process_cb cb, void *data,
    hcsb_process_t **out);

/* Attaches to an existing process by PID (no stdio): registers a
 * WaitForProcess for it.  Returns -EEXIST when a handle for that PID is
 * already open on this container, -EINVAL when the container is closing.
 * (The guest forgets an exec'd process after its first answered wait: a
 * later wait is "not found", reported as an unknown exit.) */
HCSB_EXTERN int hcsb_container_open_process(hcsb_container_t *c, uint32_t pid,
                                            hcsb_process_t **out);

HCSB_EXTERN uint32_t hcsb_process_pid(const hcsb_process_t *p);
HCSB_EXTERN hcsb_container_t *hcsb_process_container(const hcsb_process_t *p);
HCSB_EXTERN void hcsb_process_set_data(hcsb_process_t *p, void *data);
HCSB_EXTERN void *hcsb_process_get_data(const hcsb_process_t *p);

/* SignalProcess with {"Signal": signum}, 1 <= signum <= HCSB_SIGNAL_MAX
 * (Linux numbering; -EINVAL otherwise, nothing is sent).  hcsb_process_kill
 * sends it without options, which the guest turns into SIGKILL.
 * `delivered` is 0 when the guest said the process
 * was already gone (0x80070490; status 0 then), as hcsshim's Signal.
 * UVM processes: the Linux GCS cannot signal them (HCSB_EGUEST 0xC037010E).
 * Before the process exists the signal is held and sent once it does
 * (-ESRCH in the callback when the create failed).  When the guest lacks
 * SignalProcessSupported, 6, 9 and 15 are sent as a plain kill and other
 * signals return -ENOTSUP, as hcsshim's shim does. */
#define HCSB_SIGNAL_MAX 64 /* SIGRTMAX of the Linux guest */
typedef void (*hcsb_signal_cb)(void *data, int status,
                               const hcsb_guest_error_t *gerr, int delivered);
HCSB_EXTERN int hcsb_process_signal(hcsb_process_t *p,
                                    const hcsb_call_opts_t *opts, int signum,
                                    hcsb_signal_cb cb, void *data);
HCSB_EXTERN int hcsb_process_kill(hcsb_process_t *p,
                                  const hcsb_call_opts_t *opts,
                                  hcsb_signal_cb cb, void *data);

/* Waits for the exit reported by the library's own outstanding
 * WaitForProcess.  status 0 with the exit code; -ETIMEDOUT when `timeout_ms`
 * (0 = none) passed first (a local timer: the process is still waitable);
 * HCSB_EGUEST when the guest's wait failed (e.g. 0x80070490: exit code
 * unknown), with the guest's HRESULT in `exit_code` (the callback has no
 * room for `gerr`); the create's failure status when the process never
 * existed; connection loss statuses; -ECANCELED when the handle or the
 * connection was closed.  Any number of waits may be outstanding; after the
 * exit, a wait completes on the next turn with the same outcome. */
typedef void (*hcsb_process_wait_cb)(void *data, hcsb_process_t *p, int status,
                                     uint32_t exit_code);
HCSB_EXTERN int hcsb_process_wait(hcsb_process_t *p, uint32_t timeout_ms,
                                  hcsb_process_wait_cb cb, void *data);

/* The exit code: 0 and *code once exited; -EBUSY while running; -ENODATA
 * when it can never be known (the guest said "not found", or the connection
 * was lost) — never a made-up 0. */
HCSB_EXTERN int hcsb_process_exit_code(const hcsb_process_t *p, uint32_t *code);

/* ResizeConsole (note the order: width, height).  Before the process exists
 * the size is kept and applied once it does (-ESRCH when the create
 * failed).  UVM processes: HCSB_EGUEST 0xC037010E from the Linux GCS.  The
 * config's console_width/height need no call (see hcsb_process_config_t). */
HCSB_EXTERN int hcsb_process_resize_console(hcsb_process_t *p,
                                            const hcsb_call_opts_t *opts,
                                            uint16_t width, uint16_t height,
                                            hcsb_done_cb cb, void *data);

/* Stdio streams (connected uv_pipe_t owned by the library; NULL when not
 * requested, not yet connected, or already closed).  Read and write them
 * with libuv directly, or use the convenience calls below — not both.  Who
 * reads stdout/stderr directly must call hcsb_process_close_stdout/stderr
 * after EOF: a Linux guest reports a container process's exit only once
 * the host closed its end (protocol.md §9.5). */
HCSB_EXTERN uv_stream_t *hcsb_process_stdin(const hcsb_process_t *p);
HCSB_EXTERN uv_stream_t *hcsb_process_stdout(const hcsb_process_t *p);
HCSB_EXTERN uv_stream_t *hcsb_process_stderr(const hcsb_process_t *p);

/* Half-closes stdin (the process reads EOF).  Idempotent: 0 every time,
 * also when stdin was never requested or the process has exited.  Pending
 * writes are flushed first. */
HCSB_EXTERN int hcsb_process_close_stdin(hcsb_process_t *p);
/* Closes stdout / stderr (the caller is done reading).  Idempotent. */
HCSB_EXTERN int hcsb_process_close_stdout(hcsb_process_t *p);
HCSB_EXTERN int hcsb_process_close_stderr(hcsb_process_t *p);

/* Convenience reading: `cb` gets stdout (fd 1) and stderr (fd 2) bytes as
 * they arrive (`buf` is valid during the callback only: the connection
 * reads every process's output into one buffer); nread < 0 ends that
 * stream (UV_EOF at its end), after which the library closes it so the
 * guest can report the exit (protocol.md §9.5).
 * Stops reading from the guest while stopped (back-pressure).  May be
 * called before the create callback.  Returns -EINVAL when neither stdout
 * nor stderr was requested, -EPIPE when the streams are closed. */
typedef void (*hcsb_process_read_cb)(void *data, hcsb_process_t *p, int fd,
                                     const char *buf, ssize_t nread);
HCSB_EXTERN int hcsb_process_read_start(hcsb_process_t *p,
                                        hcsb_process_read_cb cb, void *data);
HCSB_EXTERN int hcsb_process_read_stop(hcsb_process_t *p);

/* Convenience writing to stdin: the bytes are copied; `cb` (may be NULL)
 * runs once they were written or failed.  -EPIPE when stdin is closed or was
 * never requested. */
HCSB_EXTERN int hcsb_process_write(hcsb_process_t *p, const void *buf,
                                   size_t len, hcsb_done_cb cb, void *data);

/* Releases the handle: closes its stdio streams and listeners; does not kill
 * the process nor cancel the guest-side wait (its answer is still consumed).
 * Pending operations of this handle (waits, signals, resizes, writes, the
 * create) complete with -ECANCELED first. */
HCSB_EXTERN void hcsb_process_close(hcsb_process_t *p, hcsb_close_cb cb,
                                    void *data);

#ifdef __cplusplus
}
#endif
#endif /* HCSBRIDGE_CONN_H */
