/* hcsb-guest's acting backend: what a real Linux GCS does inside a utility
 * VM, chosen at start (--vsock without --emulate) instead of the
 * emulator's recording.  The emulator's request decoding, process table,
 * stdio relays and exit notifications are shared; what differs is behind
 * the hooks below:
 *
 *   act.c          the backend: start, teardown, helper commands ("jobs",
 *                  run on the loop, reaped through the emulator's reaper),
 *                  exits of orphans nobody claimed yet, final cleanup
 *   act-dm.c       device-mapper over /dev/mapper/control (ioctls; the
 *                  initramfs has no dmsetup) and the table strings
 *   act-storage.c  VPMem (wait for /dev/pmemN, dm-linear, dm-verity, ext4
 *                  read-only `noload`) and CombinedLayers (overlay)
 *   act-fs.c       mkdir -p, mount points, removal that stops at them
 *   act-spec.c     the OCI spec adapted as the GCS does for a standalone
 *                  container; config.json and process.json
 *   act-runc.c     runc command lines, runc's JSON log, console sockets
 *   act-create.c   Create: the bundle, runc create
 *   act-ctr.c      the rest through runc: start, exec, kill, delete, the
 *                  container's processes and cgroup (act-ctr.h: what the
 *                  two share)
 *
 * Everything that waits (a device node, a runc command) is asynchronous:
 * the request is answered from a callback, errors with E_FAIL and the
 * guest's message, as the GCS answers.  Internal names: hcsb__ga*,
 * hcsb__gdm*, hcsb__gspec*, hcsb__grunc*.
 *
 * The pure helpers (table strings, option strings, spec adaptation, runc
 * arguments, log parsing, argument checks) touch nothing outside their
 * arguments, so the host's unit tests (test/test-guest-act.c) run them
 * without privileges. */
#ifndef HCSB_GUEST_ACT_H
#define HCSB_GUEST_ACT_H

#include <stdint.h>
#include <sys/types.h>

#include "guest/guest.h"

/* ------------------------------------------------------------------------ */
/* Limits */

#define HCSB__GA_DEVICE_WAIT_MS 10000u /* for /dev/pmemN to appear */
#define HCSB__GA_DEVICE_POLL_MS 20u
#define HCSB__GA_JOB_MS 120000u    /* one runc command, under TCG too */
#define HCSB__GA_MAX_JOBS 64u      /* runc commands at once */
#define HCSB__GA_MAX_WAITS 256u    /* VPMem Adds waiting for a device */
#define HCSB__GA_JOB_OUTPUT 8192u  /* output of a helper kept for errors */
#define HCSB__GA_ORPHANS 256u      /* unclaimed exits remembered */
#define HCSB__GA_MAX_LAYERS 128u   /* CombinedLayers */
#define HCSB__GA_MAX_OPTIONS 4095u /* mount data: one page */
#define HCSB__GA_DM_NAME_MAX 127u  /* DM_NAME_LEN - 1 */
#define HCSB__GA_STATE_DIR "/run/hcsb-guest"
#define HCSB__GA_CGROUP_PARENT "/containers/"

/* ------------------------------------------------------------------------ */
/* Pure helpers: argument checks */

/* An absolute path without "." or ".." components, of at most 4095
 * bytes, not "/" itself: where the guest may mount things.  1 or 0. */
int hcsb__ga_path_ok(const char *path);
/* A path_ok strictly below /run or /tmp: where a bundle or a scratch
 * directory may be (the delete removes them recursively). */
int hcsb__ga_state_path_ok(const char *path);

/* ------------------------------------------------------------------------ */
/* act-fs.c */

/* "a/b" (malloc'd), NULL on ENOMEM. */
char *hcsb__ga_path_join(const char *a, const char *b);
/* mkdir -p (parents 0755); *made says whether `path` itself was created.
 * 0 or -errno. */
int hcsb__ga_mkdir_p(const char *path, mode_t mode, int *made);
/* 1 when something is mounted at `path` / at `dir` or below it. */
int hcsb__ga_mounted_at(const char *path);
int hcsb__ga_mounted_under(const char *dir);
/* Removes `path` and what is below it, except below mount points; err
 * gets the outermost failure ("unlinkat DIR: directory not empty"), ""
 * when none.  0 or -errno. */
int hcsb__ga_rm_tree(const char *path, char *err, size_t esize);

/* ------------------------------------------------------------------------ */
/* act-dm.c */

/* DeviceVerityInfo as the guest uses it. */
typedef struct hcsb__gverity_s {
  int64_t data_bytes; /* Ext4SizeInBytes */
  int64_t block;      /* BlockSize: data and hash block size */
  int64_t version;
  const char *alg;  /* Algorithm */
  const char *root; /* RootDigest (hex) */
  const char *salt; /* Salt (hex, "" for none) */
  int superblock;   /* the hash area starts with a verity superblock */
} hcsb__gverity_t;

/* The dm-linear table for `size` bytes of `dev` from byte `offset`:
 * "0 <sectors> linear <dev> <start sector>"; *sectors is its length.  Both
 * must be multiples of 512 and size non-zero.  0, -EINVAL or -ENOSPC (out
 * too small). */
int hcsb__gdm_linear_table(char *out, size_t size, const char *dev,
                           uint64_t offset, uint64_t bytes, uint64_t *sectors);
/* The dm-verity parameters (data and hash on `dev`, the hash tree after the
 * data, one block further with a superblock):
 * "<version> <dev> <dev> <block> <block> <data blocks> <hash start> <alg>
 * <root> <salt or ->"; *sectors is the target length.  -EINVAL when a
 * field is unusable (sizes not multiples of 512 and the block size, block
 * not a power of two in 512..65536, digest or salt not hex, ...). */
int hcsb__gdm_verity_params(char *out, size_t size, const char *dev,
                            const hcsb__gverity_t *v, uint64_t *sectors);
/* The GCS's device names: "dm-linear-pmem<N>-<offset>-<size>" and
 * "dm-verity-pmem<N>-<root digest>".  -ENAMETOOLONG, -EINVAL (a digest
 * with a character a name cannot hold). */
int hcsb__gdm_linear_name(char *out, size_t size, uint32_t dev, uint64_t offset,
                          uint64_t bytes);
int hcsb__gdm_verity_name(char *out, size_t size, uint32_t dev,
                          const char *root);

/* Creates a read-only device `name` with one target (type, length in
 * sectors, parameters), resumes it and makes /dev/mapper/<name>; `path`
 * receives that path.  On failure nothing is left and `err` holds the
 * GCS-like reason ("device-mapper table load: invalid argument").
 * Returns 0 or -errno. */
int hcsb__gdm_create(const char *name, const char *type, uint64_t sectors,
                     const char *params, char *path, size_t path_size,
                     char *err, size_t err_size);
/* Removes the device and its node; retried while the kernel still calls
 * it busy (just after an unmount).  0, -ENXIO (no such device) or
 * -errno. */
int hcsb__gdm_remove(const char *name);

/* ------------------------------------------------------------------------ */
/* act-storage.c */

/* The overlay mount data: "lowerdir=L1:L2[,upperdir=U,workdir=W]" (the
 * layers in the order given, as the GCS joins them: the first is the
 * top).  upper and work are both NULL (read-only) or both set.  -EINVAL
 * (no layer, a path with ':' ',' or '\n' or not absolute), -E2BIG (more
 * than one page, or too many layers). */
int hcsb__goverlay_data(char *out, size_t size, const char *const *layers,
                        size_t n, const char *upper, const char *work);
/* The VPMem mount: "/dev/pmem<N>" as source, ext4, MS_RDONLY, "noload". */
#define HCSB__GA_PMEM_FSTYPE "ext4"
#define HCSB__GA_PMEM_DATA "noload"

/* ModifySettings for the types the backend acts on: VPMemDevice and
 * CombinedLayers (mounted), MappedVirtualDisk and MappedDirectory (refused:
 * this VM has no VMBus and its kernel no 9p).  Called after hcsb__gh_modify
 * validated the request; answers it (maybe later).  Takes `detail` (the
 * record's text) in every case.  Returns 1 when it took the request, 0
 * for types that are only recorded (Network, policies, ...). */
int hcsb__ga_modify(hcsb__greq_t *r, const char *type, int add,
                    json_object *settings, const char *key, char *detail);
/* Teardown after the loop: unmounts and removes what the Adds made, newest
 * first. */
void hcsb__ga_storage_final(hcsb__guest_t *g);
/* Pending Adds dropped without an answer (the bridge is closing). */
void hcsb__ga_storage_teardown(hcsb__guest_t *g);

/* ------------------------------------------------------------------------ */
/* act-spec.c */

enum {
  HCSB__GSPEC_HOSTNAME = 1, /* write <rootdir>/hostname */
  HCSB__GSPEC_HOSTS = 2,    /* write <rootdir>/hosts */
  HCSB__GSPEC_RESOLV = 4    /* write <rootdir>/resolv.conf */
};

/* Adapts `spec` in place as the v0.11.8 GCS does for a standalone
 * container: /etc/hostname, /etc/hosts and /etc/resolv.conf bind-mounted
 * from <rootdir> unless the spec mounts something there ("ro" too when
 * root.readonly), linux.cgroupsPath = /containers/<id>, no "windows".
 * *files says which of the files must be written.  0, -EINVAL (the spec's
 * parts have the wrong types), -ENOMEM. */
int hcsb__gspec_adapt(json_object *spec, const char *id, const char *rootdir,
                      unsigned *files);
/* The files' texts (malloc'd): the hostname line and an /etc/hosts naming
 * it, as the GCS writes them. */
char *hcsb__gspec_hostname_text(const char *hostname);
char *hcsb__gspec_hosts_text(const char *hostname);
/* The hostname the container gets: the spec's, else this machine's. */
int hcsb__gspec_hostname(json_object *spec, char *out, size_t size);
/* The rootfs directory runc uses: root.path, relative to the bundle when
 * not absolute.  -EINVAL when there is none. */
int hcsb__gspec_rootfs(json_object *spec, const char *bundle, char *out,
                       size_t size);
/* An exec's process.json: the host's OCI process with the container's
 * rlimits, and its user when the exec names none (as the GCS does).
 * Returns a new object or NULL (ENOMEM). */
json_object *hcsb__gspec_exec_process(json_object *proc, json_object *spec);
/* Writes `text` to path (mode 0644) atomically enough for a fresh
 * directory: 0 or -errno. */
int hcsb__gspec_write(const char *path, const char *text, size_t len);

/* ------------------------------------------------------------------------ */
/* act-runc.c */

enum {
  HCSB__GRUNC_CREATE,
  HCSB__GRUNC_START,
  HCSB__GRUNC_EXEC,
  HCSB__GRUNC_KILL,
  HCSB__GRUNC_DELETE,
  HCSB__GRUNC_STATE,
  HCSB__GRUNC_UPDATE
};

typedef struct hcsb__grunc_cmd_s {
  int op;
  const char *runc;     /* the binary */
  const char *log;      /* --log FILE --log-format json, or NULL */
  const char *id;       /* the container */
  const char *bundle;   /* create */
  const char *pid_file; /* create, exec */
  const char *console;  /* create, exec: --console-socket, or NULL */
  const char *process;  /* exec: the process.json; update: resources */
  int sig;              /* kill */
  int all;              /* kill --all */
  int force;            /* delete --force */
} hcsb__grunc_cmd_t;

#define HCSB__GRUNC_MAX_ARGS 20
/* Fills argv (NULL-terminated, pointing into `c` and `num`) with the
 * command line the GCS uses: create -b B --no-pivot --pid-file P
 * [--console-socket S] ID; start ID; exec -d --process J --pid-file P
 * [--console-socket S] ID; kill [--all] ID SIG; delete [--force] ID;
 * update --resources FILE ID.
 * -EINVAL when a field the operation needs is missing or the ID is not
 * one runc accepts. */
int hcsb__grunc_argv(const hcsb__grunc_cmd_t *c, char num[16],
                     const char *argv[HCSB__GRUNC_MAX_ARGS]);
/* runc's rule for IDs: [A-Za-z0-9_+.-]+, not "." or "..", at most 255;
 * and no leading '-' (its command line would read a flag). */
int hcsb__grunc_id_ok(const char *id);
/* The last error ("level":"error" or worse) in runc's JSON log at `path`,
 * its "msg" (and ": <error>" when the entry has one) into out; 0, or
 * -ENOENT when the file has none. */
int hcsb__grunc_log_error(const char *path, char *out, size_t size);
/* Reads a pid file: 0 and *pid, -errno or -EINVAL. */
int hcsb__grunc_read_pid(const char *path, pid_t *pid);
/* A listening console socket at `path` (non-blocking).  The fd or -errno. */
int hcsb__grunc_console_listen(const char *path);
/* The pty master runc sent to the console socket: accepts and receives
 * without blocking (runc sends it before it exits).  The fd or -errno. */
int hcsb__grunc_console_recv(int lfd);

/* ------------------------------------------------------------------------ */
/* act.c: helper commands */

typedef struct hcsb__gjob_s hcsb__gjob_t;
/* status: the wait status (>= 0), or -ETIMEDOUT (killed after
 * HCSB__GA_JOB_MS), -ECANCELED (the bridge is closing; answer nothing),
 * -errno (it could not start).  out: what it printed (NUL-terminated,
 * bounded; "" when its output was not captured).  `seq` tells exits of
 * orphans reaped after its start (hcsb__ga_claim). */
typedef void (*hcsb__gjob_cb)(void *data, int status, const char *out,
                              uint64_t seq);

/* Runs argv[0] (a path) with argv; fds[i] >= 0 become its stdio (the
 * caller keeps its copies), -1 means the captured output for stdout and
 * stderr (/dev/null for stdin), -2 /dev/null.  The callback runs once,
 * from the loop, after the exit.  0 or -errno (nothing runs, no
 * callback): -EAGAIN when HCSB__GA_MAX_JOBS run already. */
int hcsb__gjob_run(hcsb__guest_t *g, const char *const *argv, const int fds[3],
                   hcsb__gjob_cb cb, void *data);
/* The same, synchronously (after the loop): the wait status or -errno. */
int hcsb__gjob_run_sync(const char *const *argv, unsigned timeout_ms);

/* An orphan reaped since `seq` with this PID: 1 and its wait status
 * (forgotten then), else 0. */
int hcsb__ga_claim(hcsb__guest_t *g, pid_t pid, uint64_t seq, int *status);

/* strerror() in Go's words (lower case): "no such file or directory". */
const char *hcsb__ga_errstr(int err, char buf[128]);
/* "exit status 1" or "signal: killed" (Go's ProcessState text). */
void hcsb__ga_status_text(int status, char *out, size_t size);

/* The backend's state. */
struct hcsb__gact_s {
  char *runc;     /* resolved path of runc, NULL when there is none */
  uint64_t reaps; /* counts reaped unknown children */
  struct {
    pid_t pid;
    int status;
    uint64_t seq;
  } orphans[HCSB__GA_ORPHANS];
  unsigned next_orphan;
  TAILQ_HEAD(hcsb__gjob_list, hcsb__gjob_s) jobs;
  unsigned njobs;
  TAILQ_HEAD(hcsb__gaop_list, hcsb__gaop_s) ops;      /* VPMem Adds waiting */
  TAILQ_HEAD(hcsb__gamnt_list, hcsb__gamnt_s) mounts; /* what Adds mounted */
  unsigned nmounts;
  TAILQ_HEAD(hcsb__gacreate_list, hcsb__gacreate_s)
  creating; /* Creates running runc */
  unsigned ncreating;
  char **stale; /* IDs runc may still know after a failure: deleted at the
                   end */
  size_t nstale;
  uint64_t seq; /* names of files and sockets */
};

/* ------------------------------------------------------------------------ */
/* act.c: the hooks */

/* Turns the backend on (g->act).  0 or -errno. */
int hcsb__ga_init(hcsb__guest_t *g);
/* The bridge is closing: helpers killed, pending operations dropped. */
void hcsb__ga_teardown(hcsb__guest_t *g);
/* After the loop and the final reap: every container deleted with runc,
 * everything mounted undone, the state freed. */
void hcsb__ga_final(hcsb__guest_t *g);
/* The reaper found `pid`, which no process record has. */
void hcsb__ga_reaped(hcsb__guest_t *g, pid_t pid, int status);

/* ------------------------------------------------------------------------ */
/* act-ctr.c */

/* Create: `c` is built (not in the table); the backend writes the bundle,
 * runs runc create, inserts `c` (hcsb__gctr_insert) and answers.  Takes
 * `c` (its one reference).  `scratch` is the ScratchDirPath ("" for
 * none), removed by the delete as the GCS does. */
void hcsb__ga_create(hcsb__greq_t *r, hcsb__gctr_t *c, const char *scratch);
/* 1 while a Create for `id` runs. */
int hcsb__ga_creating(hcsb__guest_t *g, const char *id);

/* An ExecuteProcess on a container, its stdio dialed. */
typedef struct hcsb__gaexec_s {
  const hcsb__gcall_t *call;
  int init;             /* start the init (else exec `process`) */
  json_object *process; /* exec: the OCI process */
  int socks[3];         /* taken (set to -1) */
  int tty;
  uint16_t rows, cols;
  const char *argv0;
} hcsb__gaexec_t;
void hcsb__ga_exec(hcsb__guest_t *g, hcsb__gctr_t *c, hcsb__gaexec_t *x);

/* ShutdownGraceful/Forced, or SIGTERM/SIGKILL to the init: runc kill
 * --all, then the answer. */
void hcsb__ga_kill(hcsb__guest_t *g, const hcsb__gcall_t *call, hcsb__gctr_t *c,
                   int sig);
/* ModifySettings ContainerConstraints on a container: its "Linux"
 * resources (an OCI LinuxResources object) through `runc update
 * --resources`, as the GCS does; without them there is nothing to do. */
void hcsb__ga_update(hcsb__greq_t *r, hcsb__gctr_t *c, json_object *settings);
/* DeleteContainerState: runc delete, the bundle and state removed. */
void hcsb__ga_delete(hcsb__greq_t *r, hcsb__gctr_t *c);
/* The PIDs in the container's cgroup, ascending. */
int hcsb__ga_pids(hcsb__gctr_t *c, pid_t **out, size_t *n);
/* Frees the backend's part of a container (its last reference went). */
void hcsb__ga_ctr_free(hcsb__gctr_t *c);
/* After the loop: runc delete --force of every container left. */
void hcsb__ga_ctr_final(hcsb__guest_t *g);

#endif /* HCSB_GUEST_ACT_H */
