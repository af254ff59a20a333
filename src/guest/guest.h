/* hcsb-guest: the Linux GCS's bridge behaviour (hcsshim v0.11.8).  On a
 * host it emulates the guest, running real local processes in place of a
 * utility VM and recording storage and containers; inside a VM the acting
 * backend (act.h) mounts the storage and runs the containers with runc.
 *
 * Architecture (one libuv loop, no threads):
 *   conn.c      the bridge byte stream: frames in, responses out, teardown
 *   dispatch.c  negotiation gate, per-type routing, the small handlers
 *   decode.c    Go-like typed decoding of request fields (0xC037010D texts)
 *   reply.c     response/notification bodies, byte-compatible with the GCS
 *   exec.c      ExecuteProcess: parameters, stdio dials with retry, spawn
 *   spawn.c     fork/exec with a session, optional controlling pty
 *   relay.c     stdio relays: pipe relay with drain handshake, tty relay
 *   process.c   process table, reaping, waits, exit codes
 *   container.c containers, their lifecycle and the exit notification
 *   modify.c    ModifySettings validation and the resource registry
 *   metrics.c   ProcessList and LCOWMetrics from /proc
 *   dump.c      DumpStacks text
 *   watchdog.c  kills what we started if we are killed ourselves
 *   vsock.c     the vsock transport used inside a utility VM
 *   act*.c      inside a VM: the acting backend (act.h), which mounts
 *               storage and runs containers with runc
 *   main.c      command line, transports, the loop
 *
 * Only the protocol core (src/proto) is shared with the library; the
 * host-side bridge object is not used here.  Internal names: hcsb__g*.
 */
#ifndef HCSB_GUEST_H
#define HCSB_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <uv.h>

#include "proto/proto.h"

/* ------------------------------------------------------------------------ */
/* Limits */

#define HCSB__G_MAX_PROCS 4096u    /* live process records */
#define HCSB__G_MAX_PENDING 65536u /* outstanding waits and execs */
#define HCSB__G_MAX_CONTAINERS 1024u
#define HCSB__G_MAX_RESOURCES 4096u /* ModifySettings records kept */
#define HCSB__G_MAX_AID 1024u       /* longest ActivityId echoed back */
#define HCSB__G_MAX_ECHO 4096u      /* request bytes quoted in errors */
/* Request bytes kept (specs, execs). */
#define HCSB__G_MAX_RETAINED (64u << 20)
#define HCSB__G_WRITE_HIGH (8u << 20) /* stop reading requests above... */
#define HCSB__G_WRITE_LOW (1u << 20)  /* ...and resume below */
#define HCSB__G_MAX_FAIL_AT 16u       /* --fail-request options */
#define HCSB__G_DIAL_TRIES 10
#define HCSB__G_DIAL_INTERVAL_MS 100
#define HCSB__G_VSOCK_HOST_CID 2u             /* VMADDR_CID_HOST */
#define HCSB__G_VSOCK_BRIDGE_PORT 0x40000000u /* LinuxGcsVsockPort */
#define HCSB__G_VSOCK_DIAL_MS 120000u         /* GCSConnectionTimeout */

#define HCSB__G_NULL_ID "00000000-0000-0000-0000-000000000000"

typedef struct hcsb__guest_s hcsb__guest_t;
typedef struct hcsb__gproc_s hcsb__gproc_t;
typedef struct hcsb__gctr_s hcsb__gctr_t;
typedef struct hcsb__gwait_s hcsb__gwait_t;
typedef struct hcsb__grelay_s hcsb__grelay_t;
typedef struct hcsb__gexec_s hcsb__gexec_t;
typedef struct hcsb__gres_s hcsb__gres_t;
typedef struct hcsb__gact_s hcsb__gact_t; /* act.h */

TAILQ_HEAD(hcsb__gproc_list, hcsb__gproc_s);
TAILQ_HEAD(hcsb__gctr_list, hcsb__gctr_s);
TAILQ_HEAD(hcsb__gwait_list, hcsb__gwait_s);
TAILQ_HEAD(hcsb__gexec_list, hcsb__gexec_s);
TAILQ_HEAD(hcsb__gres_list, hcsb__gres_s);

/* Who asked: enough to answer a request after its frame is gone. */
typedef struct hcsb__gcall_s {
  uint32_t type; /* the request type; the answer uses its response type */
  uint64_t id;
  char *aid; /* ActivityId to echo, NULL when the request had none */
} hcsb__gcall_t;

/* One request while it is being dispatched (body valid only meanwhile). */
typedef struct hcsb__greq_s {
  hcsb__guest_t *g;
  hcsb__gcall_t call; /* call.aid points into root, not owned */
  const char *body;
  size_t len;
  json_object *root; /* parsed body, NULL when it did not parse */
  int parsed;        /* 1 when body is JSON */
  const char *cid;   /* ContainerId ("" when absent or not a string) */
} hcsb__greq_t;

struct hcsb__guest_s {
  uv_loop_t *loop;

  /* options */
  char stdio_dir[4096];
  uint32_t max_frame;
  int allow_uvm_signal;
  int verbose;
  uint32_t fail_at[HCSB__G_MAX_FAIL_AT]; /* --fail-request: request numbers */
  unsigned nfail_at;
  int vsock; /* stdio relays dial vsock_cid:<port> */
  uint32_t vsock_cid;
  /* The acting backend (act.h): inside a VM, storage is mounted and
   * containers run under runc.  NULL: the emulator records instead. */
  hcsb__gact_t *act;

  /* bridge */
  uv_pipe_t in_pipe, out_pipe; /* out_pipe unused when one socket does both */
  uv_stream_t *in, *out;
  int conn_open;
  int reading;
  size_t wq_bytes;   /* response bytes written or waiting */
  hcsb__buf_t wnext; /* frames batched behind the write in flight */
  int writing;
  hcsb__decoder_t dec;
  int negotiated;
  int closing; /* teardown started: nothing more is sent */
  int exit_code;
  uv_timer_t flush_timer;
  int flush_timer_init;

  /* state */
  struct hcsb__gproc_list procs; /* every record not yet freed */
  unsigned nprocs;
  struct hcsb__gctr_list ctrs;
  unsigned nctrs;
  struct hcsb__gexec_list execs; /* ExecuteProcess requests still dialing */
  unsigned npending;             /* waits + execs outstanding */
  struct hcsb__gres_list resources;
  unsigned nresources;
  size_t retained; /* bytes of requests kept alive (specs...) */

  uv_signal_t sigchld, sigterm, sigint, sighup;

  uint64_t nrequests;
  uint64_t nsession; /* requests since negotiation (--fail-request) */
  uint64_t start_ms;
};

/* ------------------------------------------------------------------------ */
/* log (main.c) */

void hcsb__glog(hcsb__guest_t *g, int verbose_only, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------ */
/* conn.c */

/* Starts reading requests on an already-connected stream pair (in == out for
 * a socket).  Returns 0 or a libuv error. */
int hcsb__gconn_start(hcsb__guest_t *g);
/* Queues one frame; the body is copied.  Dropped once teardown started. */
void hcsb__gconn_send(hcsb__guest_t *g, uint32_t type, uint64_t id,
                      const char *body, size_t len);
/* Ends the session: kills every process, closes every handle.  The loop
 * then runs dry and main() finishes reaping.  Idempotent. */
void hcsb__guest_teardown(hcsb__guest_t *g, int exit_code, const char *why);

/* ------------------------------------------------------------------------ */
/* dispatch.c */

void hcsb__gdispatch(hcsb__guest_t *g, const hcsb__frame_t *f);
/* Answers a frame larger than max_frame (its body was never read). */
void hcsb__gdispatch_oversize(hcsb__guest_t *g, const hcsb__hdr_t *h);
/* Go's MessageIdentifier.String(): the constant's name, else decimal. */
#define HCSB__GMSG_NAME_MAX 64

/* E_OUTOFMEMORY: the one HRESULT the emulator sends that has no public
 * HCSB_E_* constant (the library never needs to tell it apart). */
#define HCSB__G_E_OUTOFMEMORY 0x8007000Eu
const char *hcsb__gmsg_name(uint32_t type, char buf[HCSB__GMSG_NAME_MAX]);

/* ------------------------------------------------------------------------ */
/* reply.c */

/* A tiny JSON writer producing exactly Go's compact form. */
typedef struct hcsb__gjw_s {
  hcsb__buf_t b;
  int err;
  unsigned depth;
  unsigned char first[16]; /* per open container: no member written yet */
} hcsb__gjw_t;

void hcsb__gjw_init(hcsb__gjw_t *w);
void hcsb__gjw_free(hcsb__gjw_t *w);
void hcsb__gjw_obj(hcsb__gjw_t *w, const char *key); /* key NULL: a value */
void hcsb__gjw_arr(hcsb__gjw_t *w, const char *key);
void hcsb__gjw_end(hcsb__gjw_t *w, char close); /* '}' or ']' */
void hcsb__gjw_str(hcsb__gjw_t *w, const char *key, const char *s, size_t n);
void hcsb__gjw_cstr(hcsb__gjw_t *w, const char *key, const char *s);
void hcsb__gjw_i64(hcsb__gjw_t *w, const char *key, int64_t v);
void hcsb__gjw_u64(hcsb__gjw_t *w, const char *key, uint64_t v);
void hcsb__gjw_bool(hcsb__gjw_t *w, const char *key, int v);
void hcsb__gjw_raw(hcsb__gjw_t *w, const char *key, const char *json);

/* Begins a response body: {"Result":hr,"ActivityId":aid (omitted if NULL). */
void hcsb__greply_begin(hcsb__gjw_t *w, uint32_t hr, const char *aid);
/* Closes the body and sends it as the response to `call`. */
void hcsb__greply_finish(hcsb__guest_t *g, const hcsb__gcall_t *call,
                         hcsb__gjw_t *w);
/* A success response without typed fields. */
void hcsb__greply_ok(hcsb__guest_t *g, const hcsb__gcall_t *call);
/* An error response: ErrorMessage = msg, or "HRESULT: 0x%08x" when NULL. */
void hcsb__greply_err(hcsb__guest_t *g, const hcsb__gcall_t *call, uint32_t hr,
                      const char *msg);
void hcsb__greply_errf(hcsb__guest_t *g, const hcsb__gcall_t *call, uint32_t hr,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The container exit notification (0x30100101, ID 0). */
void hcsb__greply_notify(hcsb__guest_t *g, const char *cid, const char *aid,
                         const char *type);

/* Copies a call; aid is bounded by HCSB__G_MAX_AID.  -ENOMEM. */
int hcsb__gcall_copy(hcsb__gcall_t *dst, const hcsb__gcall_t *src);
void hcsb__gcall_free(hcsb__gcall_t *c);

/* ------------------------------------------------------------------------ */
/* decode.c: Go encoding/json semantics for the fields we read.  Each getter
 * leaves *out untouched when the member is absent or null, and returns -1
 * with d->err set (Go's wording) when the member has the wrong type. */

typedef struct hcsb__gdec_s {
  const char *strct; /* Go struct name used in messages */
  char err[256];
} hcsb__gdec_t;

int hcsb__gdec_root(hcsb__gdec_t *d, json_object *root, const char *gotype);
int hcsb__gdec_u32(hcsb__gdec_t *d, json_object *o, const char *key,
                   uint32_t *out);
int hcsb__gdec_u16(hcsb__gdec_t *d, json_object *o, const char *key,
                   uint16_t *out);
int hcsb__gdec_u8(hcsb__gdec_t *d, json_object *o, const char *key,
                  uint8_t *out);
int hcsb__gdec_i32(hcsb__gdec_t *d, json_object *o, const char *key,
                   int32_t *out);
int hcsb__gdec_i64(hcsb__gdec_t *d, json_object *o, const char *key,
                   const char *gotype, int64_t *out);
int hcsb__gdec_str(hcsb__gdec_t *d, json_object *o, const char *key,
                   const char **out);
int hcsb__gdec_bool(hcsb__gdec_t *d, json_object *o, const char *key, int *out);
int hcsb__gdec_obj(hcsb__gdec_t *d, json_object *o, const char *key,
                   json_object **out);
int hcsb__gdec_strv(hcsb__gdec_t *d, json_object *o, const char *key,
                    json_object **out);
int hcsb__gdec_strmap(hcsb__gdec_t *d, json_object *o, const char *key,
                      json_object **out);
/* Checks the body is JSON, an object (or null) whose ContainerId and
 * ActivityId are strings; otherwise answers 0xC037010D and returns -1. */
int hcsb__gdec_begin(hcsb__greq_t *r, hcsb__gdec_t *d, const char *strct);
/* Answers 0xC037010D: failed to unmarshal JSON in message "<body>": ... */
void hcsb__gdec_fail(hcsb__greq_t *r, const char *what);
/* The parent of the span the guest opens for the request: its `ocsc` as
 * "trace=<hex> span=<hex> options=<n> tracestate=<k=v,...|->", or "none". */
void hcsb__gspan_parent(json_object *root, char *out, size_t len);
/* Parses a JSON-in-string field; -1 with d->err set when it is not JSON. */
int hcsb__gdec_inner(hcsb__gdec_t *d, const char *text, json_object **out);

/* ------------------------------------------------------------------------ */
/* spawn.c */

typedef struct hcsb__gspawn_s {
  const char *path; /* resolved executable */
  char *const *argv;
  char *const *envp;
  const char *cwd; /* NULL: inherit */
  int fds[3];      /* become 0, 1, 2 in the child */
  int tty_slave;   /* >= 0: made the controlling terminal */
  /* Container processes only (NULL / -1 otherwise): */
  int uts_fd;                /* join this UTS namespace (the init's)... */
  const char *hostname;      /* ...or, failing that, a new one with this name */
  char *const *envp_no_uts;  /* the environment when neither is permitted */
  char *const *cgroup_procs; /* cgroup.procs files the child joins */
} hcsb__gspawn_t;

/* Forks and execs in a new session.  Returns 0 and *pid, or -errno with
 * *stage set to "chdir" or "exec" (the child's failure) or "fork". */
int hcsb__gspawn(const hcsb__gspawn_t *o, pid_t *pid, const char **stage);
/* Go's exec.LookPath over `path_env`: 0 and a malloc'd path, or -ENOENT
 * (not found), -EACCES or another -errno. */
int hcsb__glookpath(const char *file, const char *path_env, char **out);
/* Signals the members of session `sid` that descend from the emulator. */
void hcsb__gkill_session(pid_t sid, int sig);
/* 1 when `pid` is a descendant of the emulator. */
int hcsb__gis_descendant(pid_t pid);

/* ------------------------------------------------------------------------ */
/* relay.c */

enum { HCSB__GRELAY_DIRECT, HCSB__GRELAY_PIPES, HCSB__GRELAY_TTY };

/* Builds the child's stdio from the dialed sockets (-1 = not requested).
 * Takes ownership of the sockets.  `init_style` closes the read end of
 * unrequested stdout/stderr pipes (a container init's semantics).  On
 * success child_fds[] are what the child gets and *tty_slave is >= 0 for a
 * tty.  *out is NULL for DIRECT (nothing to relay). */
int hcsb__grelay_prepare(hcsb__guest_t *g, int mode, int socks[3],
                         int init_style, uint16_t rows, uint16_t cols,
                         hcsb__grelay_t **out, int child_fds[3],
                         int *tty_slave);
/* After a successful spawn (the child's ends already closed): starts
 * copying.  Returns how many output streams must drain before the process
 * is done; each reports with hcsb__gproc_relay_done(). */
int hcsb__grelay_start(hcsb__grelay_t *r, hcsb__gproc_t *p);
/* Closes the child's fds in the parent (after spawn, whatever happened). */
void hcsb__grelay_discard_child_fds(int child_fds[3], int tty_slave);
/* After a failed spawn. */
void hcsb__grelay_abort(hcsb__grelay_t *r);
/* The process exited: stop relaying stdin (the guest's CloseRead). */
void hcsb__grelay_process_exited(hcsb__grelay_t *r);
/* TIOCSWINSZ on the pty; 0, -ENOTTY (no pty) or -errno. */
int hcsb__grelay_resize(hcsb__grelay_t *r, uint16_t rows, uint16_t cols);
/* Closes everything left (the process record is going away). */
void hcsb__grelay_close(hcsb__grelay_t *r);
/* The acting backend's relays, made before their sockets exist: three
 * pipes (child_fds[] are the child's ends, the caller closes them after
 * starting it), or a pty master received from runc (taken).  Then
 * hcsb__grelay_attach hands over the dialed sockets (taken, -1 = not
 * requested: a pipe whose stream was not requested is closed) and
 * hcsb__grelay_start runs as usual; before that, hcsb__grelay_abort. */
int hcsb__grelay_new_pipes(hcsb__guest_t *g, hcsb__grelay_t **out,
                           int child_fds[3]);
int hcsb__grelay_new_master(hcsb__guest_t *g, int master, hcsb__grelay_t **out);
void hcsb__grelay_attach(hcsb__grelay_t *r, int socks[3]);
int hcsb__grelay_is_tty(const hcsb__grelay_t *r);

/* ------------------------------------------------------------------------ */
/* process.c */

struct hcsb__gwait_s {
  TAILQ_ENTRY(hcsb__gwait_s) link;
  hcsb__gproc_t *p;
  hcsb__gcall_t call;
  uv_timer_t timer;
  int timed;
};

struct hcsb__gproc_s {
  TAILQ_ENTRY(hcsb__gproc_s) link;  /* g->procs */
  TAILQ_ENTRY(hcsb__gproc_s) clink; /* ctr->procs */
  hcsb__guest_t *g;
  hcsb__gctr_t *ctr; /* NULL for a UVM process */
  int is_init;
  int listed; /* visible to Wait/Signal/Resize by PID */
  pid_t pid;
  char *argv0;
  int reaped;
  int wstatus;
  int finished; /* reaped and stdio drained: exit code final */
  uint32_t exit_code;
  int outputs_open;
  int tty;
  hcsb__grelay_t *relay;
  struct hcsb__gwait_list waits;
  unsigned waits_answered;
};

int hcsb__gproc_init(hcsb__guest_t *g);
/* Registers a spawned process (relay may be NULL).  Never fails: the PID
 * exists, so the record must too; returns NULL only on ENOMEM after the
 * process was killed. */
hcsb__gproc_t *hcsb__gproc_add(hcsb__guest_t *g, hcsb__gctr_t *ctr, pid_t pid,
                               int is_init, const char *argv0,
                               hcsb__grelay_t *relay, int tty);
hcsb__gproc_t *hcsb__gproc_find(hcsb__guest_t *g, hcsb__gctr_t *ctr,
                                uint32_t pid);
/* Takes a process out of the PID table (its container was deleted). */
void hcsb__gproc_unlist(hcsb__gproc_t *p);
/* WaitForProcess on a listed process; answers now or later. */
void hcsb__gproc_wait(hcsb__gproc_t *p, const hcsb__gcall_t *call,
                      uint32_t timeout_ms);
void hcsb__gproc_relay_done(hcsb__gproc_t *p);
/* Reaps what exited (SIGCHLD). */
void hcsb__gproc_reap(hcsb__guest_t *g);
/* A process whose exit was found elsewhere (the acting backend reaped it
 * before its record existed). */
void hcsb__gproc_exited(hcsb__gproc_t *p, int wstatus);
/* Teardown: kill all, close waits and relays (no answers). */
void hcsb__gproc_teardown(hcsb__guest_t *g);
/* After the loop: reap every child and descendant, free the records. */
void hcsb__gproc_final_reap(hcsb__guest_t *g, unsigned deadline_ms);
unsigned hcsb__gproc_live(const hcsb__guest_t *g);

/* ------------------------------------------------------------------------ */
/* container.c */

enum { HCSB__GCTR_CREATED, HCSB__GCTR_RUNNING, HCSB__GCTR_STOPPED };

struct hcsb__gctr_s {
  TAILQ_ENTRY(hcsb__gctr_s) link;
  hcsb__guest_t *g;
  char *id;
  char *create_aid;  /* the notification echoes Create's ActivityId */
  json_object *spec; /* OciSpecification */
  char *bundle;      /* OciBundlePath: removed by DeleteContainerState */
  int state;
  int in_table;
  unsigned refs; /* table membership + process records */
  hcsb__gproc_t *init;
  struct hcsb__gproc_list procs;
  int last_kill_sig; /* last SIGTERM/SIGKILL delivered to init */
  int notified;
  pid_t *sids; /* sessions of every process it ever ran */
  size_t nsids, sids_cap;
  size_t cost;               /* counted in g->retained while in the table */
  struct hcsb__gactr_s *act; /* the acting backend's part, or NULL */
};

hcsb__gctr_t *hcsb__gctr_find(hcsb__guest_t *g, const char *id);
/* Puts a created container into the table (its reference becomes the
 * table's); hcsb__gctr_forget takes it out (DeleteContainerState). */
void hcsb__gctr_insert(hcsb__gctr_t *c);
void hcsb__gctr_forget(hcsb__gctr_t *c);
void hcsb__gctr_unref(hcsb__gctr_t *c);
/* Remembers a process's session as part of the container.  -ENOMEM. */
int hcsb__gctr_track(hcsb__gctr_t *c, pid_t sid);
/* Type-checks the OCI process fields we use (d->err on failure). */
int hcsb__gctr_check_process(hcsb__gdec_t *d, json_object *proc);
/* A container ID as runc takes it: [A-Za-z0-9_+.-]+, not "." or "..", and
 * at most 255 bytes (it lands in paths and logs).  1 or 0. */
int hcsb__gctr_id_ok(const char *id);
/* The container's init was reaped: stopped, the other members killed. */
void hcsb__gctr_init_exited(hcsb__gctr_t *c);
/* The container's init finished (exit code final). */
void hcsb__gctr_init_finished(hcsb__gctr_t *c);
/* A wait on the container's init was answered with its exit code. */
void hcsb__gctr_init_wait_answered(hcsb__gctr_t *c);
/* Records a SIGTERM/SIGKILL delivered to init (notification Type). */
void hcsb__gctr_note_signal(hcsb__gctr_t *c, int sig);
/* The PIDs of every live process of the container, ascending. */
int hcsb__gctr_pids(hcsb__gctr_t *c, pid_t **out, size_t *n);
void hcsb__gctr_teardown(hcsb__guest_t *g);

void hcsb__gh_create(hcsb__greq_t *r);
void hcsb__gh_shutdown(hcsb__greq_t *r, int sig);
void hcsb__gh_signal(hcsb__greq_t *r);
void hcsb__gh_resize(hcsb__greq_t *r);
void hcsb__gh_get_properties(hcsb__greq_t *r);
void hcsb__gh_delete(hcsb__greq_t *r);
void hcsb__gh_wait(hcsb__greq_t *r);

/* ------------------------------------------------------------------------ */
/* exec.c */

void hcsb__gh_execute(hcsb__greq_t *r);
void hcsb__gexec_teardown(hcsb__guest_t *g);
/* ExecuteProcess requests still dialing their stdio. */
unsigned hcsb__gexec_count(const hcsb__guest_t *g);
/* POSIX-shell-like word splitting (quotes, backslashes, no expansion).
 * Returns 0 and a NULL-terminated malloc'd vector, -EINVAL, -ENOMEM. */
int hcsb__gsplit_words(const char *s, char ***out, size_t *n);
void hcsb__gstrv_free(char **v);
/* Fills *sa (<sys/un.h>) with the Unix socket address `path`: 0, or
 * -ENAMETOOLONG when it does not fit sun_path. */
struct sockaddr_un;
int hcsb__gunix_addr(const char *path, struct sockaddr_un *sa);

/* ------------------------------------------------------------------------ */
/* modify.c */

struct hcsb__gres_s {
  TAILQ_ENTRY(hcsb__gres_s) link;
  char *cid;    /* NULL for the UVM */
  char *type;   /* ResourceType */
  char *key;    /* what identifies it (mount path, ...) */
  char *detail; /* what the guest made of it (addresses, verity), or NULL */
};

void hcsb__gh_modify(hcsb__greq_t *r);
void hcsb__gmodify_teardown(hcsb__guest_t *g);
/* The first recorded mount at or below `dir` (a CombinedLayers root, a
 * disk, share or VPMem mount path), or NULL. */
const hcsb__gres_t *hcsb__gmodify_mount_under(const hcsb__guest_t *g,
                                              const char *dir);
/* For the acting backend: records a UVM resource it made (takes `detail`;
 * 0, -ENOMEM, -ENOSPC), forgets one, and answers a request with the
 * ModifySettings decode error text. */
int hcsb__gmodify_record(hcsb__guest_t *g, const char *type, const char *key,
                         char *detail);
void hcsb__gmodify_forget(hcsb__guest_t *g, const char *type, const char *key);
void hcsb__gmodify_fail(hcsb__greq_t *r, uint32_t hr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------ */
/* metrics.c */

typedef struct hcsb__gstat_s {
  pid_t pid;
  pid_t ppid;
  pid_t sid;
  char state;
  uint64_t utime_ticks, stime_ticks;
  uint64_t start_ticks; /* since boot: tells a reused PID from the first */
  uint64_t rss_pages;
} hcsb__gstat_t;

/* Reads /proc/<pid>/stat.  0 or -errno. */
int hcsb__gstat_read(pid_t pid, hcsb__gstat_t *st);
/* Calls fn for every process on the system (stops when fn returns != 0). */
int hcsb__gstat_each(int (*fn)(const hcsb__gstat_t *st, void *arg), void *arg);
/* Signals our descendants in any of these sessions (one /proc scan). */
void hcsb__gkill_sessions(const pid_t *sids, size_t n, int sig);
/* Appends the LCOWMetrics object for `pids` (sorted ascending: a
 * container's processes) to w under `key`: from their cgroup where it is
 * theirs alone (cgroup.c), from /proc otherwise. */
void hcsb__gmetrics_write(hcsb__gjw_t *w, const char *key, const pid_t *pids,
                          size_t n);

/* ------------------------------------------------------------------------ */
/* cgroup.c: a container's cgroup in LCOWMetrics' (cgroup v1) shape */

#define HCSB__G_MAX_CPUS 1024u /* per_cpu entries */
#define HCSB__G_MAX_DEVS 64u   /* block devices */
#define HCSB__G_MAX_HUGE 8u    /* huge page sizes */
#define HCSB__G_NMEM 17        /* memory.stat counters, cache..swap limit */

typedef struct hcsb__gcg_dev_s {
  unsigned major, minor;
  uint64_t v[2][2]; /* [service bytes, serviced ops][read, write] */
} hcsb__gcg_dev_t;

typedef struct hcsb__gcg_huge_s {
  char pagesize[16];
  uint64_t usage, max, failcnt;
} hcsb__gcg_huge_t;

/* have_* say a group came from the cgroup (else metrics.c uses /proc). */
typedef struct hcsb__gcg_s {
  int have_cpu, have_mem, have_pids, have_blkio;
  uint64_t cpu_total, cpu_user, cpu_kernel; /* ns */
  size_t ncpu;
  uint64_t per_cpu[HCSB__G_MAX_CPUS];
  uint64_t periods, throttled_periods, throttled_time;
  uint64_t mem[HCSB__G_NMEM];   /* v1 memory.stat order (Go's MemoryStat) */
  uint64_t total[HCSB__G_NMEM]; /* total_*; the last two have none */
  uint64_t entry[4][4];         /* usage, swap, kernel, kernel_tcp x
                                   limit, usage, max, failcnt */
  uint64_t oom[3];              /* oom_kill_disable, under_oom, oom_kill */
  uint64_t pids_current, pids_limit;
  size_t ndev;
  hcsb__gcg_dev_t dev[HCSB__G_MAX_DEVS];
  size_t nhuge;
  hcsb__gcg_huge_t huge[HCSB__G_MAX_HUGE];
} hcsb__gcg_t;

/* Fills `cg` for the container whose processes are `pids` (sorted). */
void hcsb__gcgroup_read(hcsb__gcg_t *cg, const pid_t *pids, size_t n);
/* The readers behind it, for one v2 cgroup directory, or v1 directories
 * per controller (cpuacct, cpu, memory, pids, blkio, hugetlb; NULL: not
 * there).  They add to `cg`, which starts zeroed. */
void hcsb__gcgroup_read_v2(hcsb__gcg_t *cg, const char *dir);
void hcsb__gcgroup_read_v1(hcsb__gcg_t *cg, const char *const dirs[6]);
/* The cgroup.procs files an exec'd process joins to follow `init` (see
 * cgroup.c); *out NULL when none.  0 or -ENOMEM. */
int hcsb__gcgroup_join_files(pid_t init, char ***out);
/* "/dev/sda" for 8:0; -1 when the device is unknown. */
int hcsb__gcgroup_dev_name(unsigned major, unsigned minor, char *out,
                           size_t size);

/* ------------------------------------------------------------------------ */
/* watchdog.c: kills our sessions if the emulator dies without cleaning up */

/* Forks the helper; call before anything is allocated.  0 or -errno. */
int hcsb__gwatch_start(void);
/* A new session (a spawned process's PID). */
void hcsb__gwatch_add(pid_t sid);
/* Everything was reaped: the helper may go without killing. */
void hcsb__gwatch_clean(void);

/* ------------------------------------------------------------------------ */
/* dump.c */

/* The DumpStacks text; malloc'd. */
char *hcsb__gdump(hcsb__guest_t *g, const char *span_parent, size_t *len);

/* ------------------------------------------------------------------------ */
/* vsock.c (connects AF_VSOCK: only ever run inside a guest VM) */

struct sockaddr_vm;
/* Decimal or 0x-hexadecimal u32, nothing else.  0 or -EINVAL. */
int hcsb__gvsock_parse_u32(const char *s, uint32_t *out);
/* Fills `sa` for a dial; -EINVAL for the bind-only wildcards. */
int hcsb__gvsock_addr(uint32_t cid, uint32_t port, struct sockaddr_vm *sa);
/* Starts a non-blocking dial.  Returns the socket (connected, or with
 * *in_progress set) or -errno. */
int hcsb__gvsock_dial_start(uint32_t cid, uint32_t port, int *in_progress);
/* An in-progress dial: 0 connected, -EINPROGRESS still going, -errno. */
int hcsb__gvsock_dial_check(int fd);
/* The bridge dial: blocking, retried while the host refuses, for up to
 * `timeout_ms`.  The connected socket or -errno. */
int hcsb__gvsock_dial_bridge(uint32_t cid, uint32_t port, uint32_t timeout_ms);

#endif /* HCSB_GUEST_H */
