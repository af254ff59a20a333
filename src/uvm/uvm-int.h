/* The utility VM (include/hcsbridge/uvm.h): the object and the seams
 * between its files.  Internal.
 *
 *   cfg.c      options: validation, defaults, a private copy
 *   argv.c     QEMU's and hcsb-vsockd's command lines (no I/O)
 *   cpio.c     newc archive entries (no I/O)
 *   initrd.c   the per-run initrd: a copy of the image's plus one archive,
 *              written on libuv's thread pool
 *   child.c    QEMU and hcsb-vsockd as processes: spawn through
 *              hcsb-uvm-exec, their stderr, exit, kill by PID
 *   qmp.c      the QMP codec (no I/O); monitor.c: QMP on libuv
 *   uvm.c      the handle: start (one step after the other, each bounded),
 *              the console, QEMU's exit, close
 *   vpmem.c    hot-plugged VPMem devices, one operation at a time
 *   ctr.c      containers from layer images
 *
 * The VM is a core handle (core/handle.h): the user's reference, one per
 * operation and one per libuv callback in flight.  Every callback the user
 * gets runs from the loop (the VM's deferred queue or a libuv callback),
 * never inside the call that started it.  The VM is idle (its close
 * callback may run) once QEMU and hcsb-vsockd have been reaped, the
 * initrd worker is done and the connection is closed.
 */
#ifndef HCSB_UVM_INT_H
#define HCSB_UVM_INT_H

#include <sys/stat.h>
#include <sys/types.h>

#include <uv.h>

#include <hcsbridge/uvm.h>

#include "core/handle.h"
#include "core/list.h"
#include "uvm/monitor.h"

#define HCSB__UVM_BRIDGE_PORT 0x40000000u
#define HCSB__UVM_VPMEM_ALIGN (2u << 20)
#define HCSB__UVM_MAX_SLOTS 32u
#define HCSB__UVM_TAIL 4096u /* console lines kept for the exit info */

/* ------------------------------------------------------------------------ */
/* Options (cfg.c) */

typedef struct hcsb__uvm_file_s {
  char *src;
  char *dest; /* absolute, checked */
  uint32_t mode;
  uint64_t size;
} hcsb__uvm_file_t;

typedef struct hcsb__uvm_cfg_s {
  char *kernel, *initrd, *kernel_args, *guest_cmd;
  hcsb__uvm_file_t *files;
  size_t nfiles;
  char *accel;
  uint32_t memory_mb, cpus, vpmem_slots, vpmem_max_mb;
  hcsb_uvm_vpmem_wait_t vpmem_wait;
  uint32_t time_limit_s, boot_timeout_ms, qmp_timeout_ms, vpmem_timeout_ms,
      shutdown_timeout_ms;
  char *qemu, *vsockd, *exec_wrapper, *run_parent, *console_log;
  char **qemu_args;
  size_t nqemu_args;
  hcsb_conn_options_t conn; /* address unset */
  hcsb_log_cb log_cb;
  void *log_data;
  hcsb_log_level_t log_level;
} hcsb__uvm_cfg_t;

/* Validates `o` and copies it into `c` with the defaults filled in and
 * programs resolved (PATH, $HCSB_LIBEXECDIR, the installed libexecdir).
 * 0, or -EINVAL, -ENOENT (a file or program missing), -ENOMEM; `c` is
 * clean on failure.  `why` (may be NULL) gets a line saying what was
 * wrong. */
int hcsb__uvm_cfg_init(hcsb__uvm_cfg_t *c, const hcsb_uvm_options_t *o,
                       char *why, size_t whylen);
void hcsb__uvm_cfg_free(hcsb__uvm_cfg_t *c);
/* Does the initrd need the per-run archive? */
static inline int hcsb__uvm_cfg_overrides(const hcsb__uvm_cfg_t *c) {
  return c->guest_cmd != NULL || c->nfiles > 0;
}

/* ------------------------------------------------------------------------ */
/* Command lines (argv.c) */

typedef struct hcsb__argv_s {
  char **v; /* NULL-terminated; strings owned */
  size_t n, cap;
  int oom;
} hcsb__argv_t;

int hcsb__argv_add(hcsb__argv_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hcsb__argv_free(hcsb__argv_t *a);

/* The fds the children get (uv_spawn stdio numbers). */
#define HCSB__UVM_QMP_FD 3
#define HCSB__UVM_CONSOLE_FD 4
#define HCSB__UVM_READY_FD 3

/* hcsb-uvm-exec PARENT QEMU ...: the machine of `c`, its monitor and
 * console on fds 3 and 4, the vsock device on <run>/vhost.sock, the
 * kernel and `initrd`.  0 or -ENOMEM. */
int hcsb__uvm_qemu_argv(const hcsb__uvm_cfg_t *c, const char *run_dir,
                        const char *initrd, int parent, hcsb__argv_t *out);
/* hcsb-uvm-exec PARENT hcsb-vsockd ...: ready on fd 3. */
int hcsb__uvm_vsockd_argv(const hcsb__uvm_cfg_t *c, const char *run_dir,
                          int parent, hcsb__argv_t *out);

/* ------------------------------------------------------------------------ */
/* The per-run initrd (initrd.c) */

typedef struct hcsb__initrd_job_s {
  uv_work_t work;
  const hcsb__uvm_cfg_t *cfg;
  char out[4200]; /* the file written: <run dir>/initrd.img */
  int status;     /* 0 or a negative errno */
  char why[256];  /* what failed */
} hcsb__initrd_job_t;

/* The worker: copies cfg->initrd to job->out, pads it, appends the
 * archive.  Blocking; runs on the thread pool. */
void hcsb__initrd_build(hcsb__initrd_job_t *job);

/* ------------------------------------------------------------------------ */
/* Child processes (child.c) */

typedef struct hcsb__vmproc_s hcsb__vmproc_t;
struct hcsb__vmproc_s {
  uv_process_t proc;
  uv_pipe_t err; /* its stderr, logged line by line */
  hcsb_uvm_t *uvm;
  const char *name;
  void (*on_exit)(hcsb__vmproc_t *c);
  int pid;
  uint8_t spawned;  /* proc is a live handle (close it) */
  uint8_t exited;   /* reaped: never signal the PID again */
  uint8_t err_open; /* err is a live handle */
  uint8_t err_reading;
  int64_t exit_status;
  int term_signal;
  char line[512]; /* the stderr line being collected */
  size_t line_len;
  char tail[1024]; /* the last stderr lines */
  size_t tail_len;
  char rbuf[2048];
};

/* Spawns argv (the wrapper's command line) with stdin and stdout
 * /dev/null, stderr a pipe the VM reads, and `extra` at fds 3.. .  0 or
 * uv_spawn's error (nothing to close then). */
int hcsb__vmproc_spawn(hcsb__vmproc_t *c, hcsb_uvm_t *u, const char *name,
                       const hcsb__argv_t *argv, uv_stdio_container_t *extra,
                       int nextra, void (*on_exit)(hcsb__vmproc_t *c));
/* Signals the process by PID while it has not been reaped. */
void hcsb__vmproc_kill(hcsb__vmproc_t *c, int signum);
/* Closes its libuv handles (once reaped). */
void hcsb__vmproc_close(hcsb__vmproc_t *c);
static inline int hcsb__vmproc_running(const hcsb__vmproc_t *c) {
  return c->spawned && !c->exited;
}

/* ------------------------------------------------------------------------ */
/* VPMem devices and operations (vpmem.c, ctr.c) */

typedef struct hcsb__vpmem_dev_s {
  char *image;
  dev_t st_dev;
  ino_t st_ino;
  uint64_t size;
  struct timespec mtime;
  char *mount_path;
  char *remove_json; /* the guest's Remove, built with the Add */
  char *verity;      /* the mounted root digest, or NULL */
  uint32_t slot;     /* root port rp<slot> */
  uint32_t refs;
  uint8_t mounted; /* the guest has it mounted */
  uint8_t broken;  /* plugged but not usable (the guest never saw it) */
} hcsb__vpmem_dev_t;

typedef void (*hcsb__vpmem_done)(void *data, int status,
                                 const hcsb_guest_error_t *gerr,
                                 uint32_t device_number);

typedef struct hcsb__uvm_op_s hcsb__uvm_op_t;

/* Starts an add or a remove (queued behind the one running).  `done` runs
 * exactly once, from the loop, never inside this call.  0 or the
 * synchronous errors of hcsb_uvm_add_vpmem / hcsb_uvm_remove_vpmem. */
int hcsb__vpmem_add(hcsb_uvm_t *u, const char *image,
                    const hcsb_uvm_vpmem_opts_t *opts, hcsb__vpmem_done done,
                    void *data);
int hcsb__vpmem_remove(hcsb_uvm_t *u, uint32_t device_number,
                       hcsb__vpmem_done done, void *data);
/* The VM stopped or is closing: every operation completes with `status`
 * (from the deferred queue). */
void hcsb__vpmem_fail_all(hcsb_uvm_t *u, int status);
void hcsb__vpmem_free(hcsb_uvm_t *u);
/* Pending VPMem / container work that keeps the VM busy. */
int hcsb__vpmem_busy(const hcsb_uvm_t *u);

typedef struct hcsb__uvm_ctr_s hcsb__uvm_ctr_t;
void hcsb__ctr_free_all(hcsb_uvm_t *u);

/* ------------------------------------------------------------------------ */
/* The VM */

typedef enum hcsb__uvm_step_e {
  HCSB__STEP_NEW = 0,
  HCSB__STEP_INITRD,  /* the worker writes the initrd */
  HCSB__STEP_BACKEND, /* hcsb-vsockd starting, bridge listening */
  HCSB__STEP_BOOT,    /* QEMU running: QMP, then the guest's bridge */
  HCSB__STEP_RUNNING,
  HCSB__STEP_STOPPING, /* a start failed, or close: stopping processes */
  HCSB__STEP_DONE      /* every process reaped, the connection closed */
} hcsb__uvm_step_t;

struct hcsb_uvm_s {
  hcsb__handle_t h; /* first; data: the user's */
  hcsb__dq_t dq;
  uv_loop_t *loop;
  hcsb__uvm_cfg_t cfg;
  hcsb_uvm_state_t state;
  hcsb__uvm_step_t step;
  char run_dir[4096];
  char initrd[4200]; /* the one QEMU boots */
  char address[4200];

  /* Start */
  hcsb_uvm_start_cb start_cb;
  void *start_data;
  hcsb__defer_t start_defer;
  hcsb__defer_t begin_defer;
  int start_status; /* the failure that ends the start */
  uint8_t start_told;
  uint8_t qmp_ready, conn_ready;
  uint64_t t_start_ms; /* uv_now at hcsb_uvm_start */

  /* Parts */
  hcsb__initrd_job_t *job; /* while the worker runs */
  hcsb__vmproc_t vsockd, qemu;
  uv_pipe_t ready; /* hcsb-vsockd's --ready-fd */
  uint8_t ready_open;
  hcsb__qmp_mon_t mon;
  uint8_t mon_used;
  uv_pipe_t console;
  uint8_t console_open;
  int console_fd; /* console_log, or -1 */
  char con_ring[HCSB__UVM_TAIL];
  size_t con_len, con_head; /* ring fill and next write position */
  char con_line[256];       /* for the log and the init's markers */
  size_t con_line_len;
  char rbuf[4096]; /* reads of the console and the ready pipe */
  uv_timer_t boot_timer, limit_timer, stop_timer;
  uint8_t timers_open;
  hcsb_conn_t *conn;
  uint8_t conn_closing, conn_closed;

  /* Exit */
  hcsb_uvm_exit_cb exit_cb;
  void *exit_data;
  hcsb__defer_t exit_defer;
  uint8_t exited, time_limit_hit, exit_due, exit_told;
  hcsb_uvm_exit_t exit;
  char exit_console[HCSB__UVM_TAIL + 1];
  char exit_stderr[sizeof(((hcsb__vmproc_t *)0)->tail) + 1];

  /* Close */
  uint8_t closing;
  int stop_phase; /* 0 ask the guest, 1 QMP quit, 2 SIGKILL */
  uint8_t shutdown_sent;

  /* VPMem */
  hcsb__vpmem_dev_t *devs;
  hcsb_uvm_vpmem_t *pubs; /* hcsb_uvm_vpmem_devices' array */
  size_t ndevs, devs_cap;
  uint64_t vpmem_bytes;     /* plugged so far */
  uint8_t vpmem_broken;     /* the guest's numbering can no longer be known */
  hcsb__link_t vpmem_queue; /* operations, the first one running */
  hcsb__link_t ctrs;        /* containers with layers */
  hcsb__link_t ctr_ops;     /* container operations pending */
};

/* Logs at `level` through the VM's log callback. */
void hcsb__uvm_log(const hcsb_uvm_t *u, hcsb_log_level_t level, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));
/* Milliseconds since hcsb_uvm_start. */
double hcsb__uvm_elapsed_ms(const hcsb_uvm_t *u);
/* A child exited (child.c calls it through on_exit). */
void hcsb__uvm_check_idle(hcsb_uvm_t *u);
/* Queues `fn(d)` on the VM's deferred queue. */
static inline void hcsb__uvm_defer(hcsb_uvm_t *u, hcsb__defer_t *d,
                                   hcsb__defer_fn fn) {
  hcsb__defer(&u->dq, d, fn);
}

#endif /* HCSB_UVM_INT_H */
