/* The shim's guest: a utility VM, or a guest at an address (sandbox.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hcsbridge/uvm.h>

#include "shim/image.h"
#include "shim/log.h"
#include "shim/sandbox.h"

typedef struct waiter_s {
  struct waiter_s *next;
  hcsb__sandbox_ready_cb cb;
  void *data;
} waiter_t;

struct hcsb__sandbox_s {
  uv_loop_t *loop;
  hcsb__shim_state_t *state;
  hcsb_uvm_t *uvm;   /* a VM */
  hcsb_conn_t *conn; /* the connection (the VM's, or our own) */
  int is_vm;
  int ready;  /* negotiated */
  int status; /* < 0: failed, lost or closed */
  int closing;
  int pending; /* closes still to complete before the memory goes */
  int qemu_pid, vsockd_pid;
  char error[512];
  uv_timer_t timer; /* runs the ready callbacks on a later turn */
  waiter_t *waiters;
  hcsb__sandbox_lost_cb lost_cb;
  void *lost_data;
  hcsb_close_cb close_cb;
  void *close_data;
  hcsb__sandbox_times_t times;
  const hcsb__shim_config_t *cfg; /* valid for the process's life */
  int image_pending;              /* hcsb__shim_image_ensure's callback due */
  char *console_log;
  hcsb_uvm_file_t *files;
  char **file_bufs;
  size_t nfiles;
};

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000u;
}

static void fire_waiters(uv_timer_t *t) {
  hcsb__sandbox_t *sb = t->data;
  waiter_t *w, *list;

  if (!sb->ready && sb->status == 0) return; /* still booting */
  list = sb->waiters; /* callbacks may add more: they go on the next turn */
  sb->waiters = NULL;
  while ((w = list) != NULL) {
    list = w->next;
    w->cb(w->data, sb, sb->ready && sb->status == 0 ? 0 : sb->status,
          sb->error);
    free(w);
  }
}

static void schedule(hcsb__sandbox_t *sb) {
  if (sb->waiters != NULL && !sb->closing)
    uv_timer_start(&sb->timer, fire_waiters, 0, 0);
}

static void set_failed(hcsb__sandbox_t *sb, int status, const char *fmt,
                       const char *arg) {
  if (sb->status != 0) return;
  sb->status = status < 0 ? status : -EIO;
  snprintf(sb->error, sizeof sb->error, fmt, arg, hcsb_strerror(status));
  schedule(sb);
}

static void lost(hcsb__sandbox_t *sb, const char *why) {
  int was_ready = sb->ready && sb->status == 0;

  if (sb->closing) return;
  set_failed(sb, -ENOTCONN, "%s (%s)", why);
  SHIM_WARN("the guest is gone: %s", sb->error);
  if (was_ready && sb->lost_cb != NULL) sb->lost_cb(sb->lost_data, sb, why);
}

/* ------------------------------------------------------------------------ */
/* A guest at an address */

static void on_conn_lost(void *data, hcsb_conn_t *conn, int status) {
  (void)conn;
  (void)status;
  lost(data, "the bridge to the guest broke");
}

static void on_conn_open(void *data, hcsb_conn_t *conn, int status,
                         const hcsb_guest_error_t *gerr) {
  hcsb__sandbox_t *sb = data;

  (void)gerr;
  if (status != 0) {
    set_failed(sb, status, "cannot reach the guest at %s: %s",
               "the configured address");
    return;
  }
  sb->conn = conn;
  sb->ready = 1;
  sb->times.ready_ms = now_ms() - sb->times.started_ms;
  hcsb_conn_set_lost_cb(conn, on_conn_lost, sb);
  SHIM_INFO("guest ready after %llu ms (protocol %u, %s)",
            (unsigned long long)sb->times.ready_ms,
            (unsigned)hcsb_conn_protocol(conn), hcsb_conn_os(conn));
  schedule(sb);
}

static int start_address(hcsb__sandbox_t *sb, const hcsb__shim_config_t *cfg) {
  hcsb_conn_options_t o;

  hcsb_conn_options_init(&o);
  o.address = cfg->guest;
  o.connect_timeout_ms = cfg->boot_timeout_ms;
  o.log_cb = hcsb__shim_lib_log;
  o.log_level = cfg->log_level;
  return hcsb_conn_open(sb->loop, &o, on_conn_open, sb, &sb->conn);
}

/* ------------------------------------------------------------------------ */
/* A utility VM */

static void on_uvm_exit(void *data, hcsb_uvm_t *uvm, const hcsb_uvm_exit_t *e) {
  hcsb__sandbox_t *sb = data;
  char why[256];

  (void)uvm;
  if (e->time_limit)
    snprintf(why, sizeof why, "the VM ran out of its time limit");
  else if (e->term_signal != 0)
    snprintf(why, sizeof why, "QEMU was killed by signal %d", e->term_signal);
  else
    snprintf(why, sizeof why, "QEMU exited with status %lld",
             (long long)e->exit_status);
  if (e->console_tail_len > 0)
    SHIM_WARN("the VM's console ended with:\n%s", e->console_tail);
  lost(sb, why);
}

static void on_uvm_started(void *data, hcsb_uvm_t *uvm, int status,
                           hcsb_conn_t *conn) {
  hcsb__sandbox_t *sb = data;

  if (status != 0) {
    hcsb_uvm_exit_t e;
    if (hcsb_uvm_exit_info(uvm, &e) == 0 && e.console_tail_len > 0)
      SHIM_WARN("the VM's console ended with:\n%s", e.console_tail);
    set_failed(sb, status, "the utility VM did not start%s: %s", "");
    return;
  }
  sb->conn = conn;
  sb->ready = 1;
  sb->times.ready_ms = now_ms() - sb->times.started_ms;
  hcsb_conn_set_lost_cb(conn, on_conn_lost, sb);
  sb->qemu_pid = hcsb_uvm_pid(uvm);
  sb->vsockd_pid = hcsb_uvm_backend_pid(uvm);
  if (sb->state != NULL) {
    if (sb->qemu_pid > 0)
      hcsb__shim_state_add_pid(sb->state, sb->qemu_pid, "qemu");
    if (sb->vsockd_pid > 0)
      hcsb__shim_state_add_pid(sb->state, sb->vsockd_pid, "hcsb-vsockd");
  }
  SHIM_INFO("utility VM ready after %llu ms (QEMU pid %d)",
            (unsigned long long)sb->times.ready_ms, sb->qemu_pid);
  schedule(sb);
}

static const char *pick_accel(const char *accel) {
  int fd;

  if (accel != NULL && strcmp(accel, "auto") != 0) return accel;
  fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return "tcg";
  close(fd);
  return "kvm";
}

/* "SRC[:DEST]": DEST is what follows the last ':' when it is absolute. */
static int split_files(hcsb__sandbox_t *sb, const hcsb__shim_config_t *cfg) {
  size_t i;

  if (cfg->nguest_files == 0) return 0;
  sb->files = calloc(cfg->nguest_files, sizeof(*sb->files));
  sb->file_bufs = calloc(cfg->nguest_files, sizeof(*sb->file_bufs));
  if (sb->files == NULL || sb->file_bufs == NULL) return -ENOMEM;
  for (i = 0; i < cfg->nguest_files; i++) {
    char *s = strdup(cfg->guest_files[i]), *colon;
    if (s == NULL) return -ENOMEM;
    sb->file_bufs[i] = s;
    sb->nfiles++;
    colon = strrchr(s, ':');
    if (colon != NULL && colon[1] == '/') {
      *colon = '\0';
      sb->files[i].dest = colon + 1;
    }
    sb->files[i].src = s;
  }
  return 0;
}

static int start_vm(hcsb__sandbox_t *sb, const hcsb__shim_config_t *cfg,
                    const char *console_log) {
  hcsb_uvm_options_t o;
  hcsb_conn_options_t co;
  int r;

  if (access(cfg->kernel, R_OK) != 0 || access(cfg->initrd, R_OK) != 0) {
    SHIM_ERROR(
        "no utility VM image: %s or %s is missing (make one with "
        "`%s -o %s`, or set kernel and initrd in %s)",
        cfg->kernel, cfg->initrd, cfg->mkuvm, cfg->image_dir,
        cfg->path != NULL ? cfg->path : "the shim's config");
    return -ENOENT;
  }
  r = split_files(sb, cfg);
  if (r != 0) return r;
  if (cfg->run_dir != NULL) mkdir(cfg->run_dir, 0700);
  hcsb_uvm_options_init(&o);
  hcsb_conn_options_init(&co);
  co.log_cb = hcsb__shim_lib_log;
  co.log_level = cfg->log_level;
  o.kernel = cfg->kernel;
  o.initrd = cfg->initrd;
  o.kernel_args = cfg->kernel_args;
  o.guest_cmd = cfg->guest_cmd;
  o.guest_files = sb->files;
  o.nguest_files = sb->nfiles;
  o.accel = pick_accel(cfg->accel);
  o.memory_mb = cfg->memory_mb;
  o.cpus = cfg->cpus;
  o.time_limit_s = cfg->time_limit_s;
  o.boot_timeout_ms = cfg->boot_timeout_ms;
  o.qemu = cfg->qemu;
  o.vsockd = cfg->vsockd;
  o.run_dir = cfg->run_dir;
  o.console_log = console_log;
  o.conn_options = &co;
  o.log_cb = hcsb__shim_lib_log;
  o.log_level = cfg->log_level;
  r = hcsb_uvm_start(sb->loop, &o, on_uvm_started, sb, &sb->uvm);
  if (r == 0) {
    hcsb_uvm_set_exit_cb(sb->uvm, on_uvm_exit, sb);
    SHIM_INFO("starting a utility VM (%s, %u MB, %u CPU)", o.accel,
              (unsigned)cfg->memory_mb, (unsigned)cfg->cpus);
  }
  return r;
}

/* The image is there (or was just built, the first time the default one
 * is used): boot. */
static void on_part_closed(void *data);

static void on_image(void *data, int status) {
  hcsb__sandbox_t *sb = data;
  const hcsb__shim_config_t *cfg = sb->cfg;
  int r;

  sb->image_pending = 0;
  if (sb->closing) {
    /* Once the close's turn has counted this build, it waits for it;
     * before that, the close simply will not count it. */
    if (sb->pending > 0) on_part_closed(sb);
    return;
  }
  if (status != 0) {
    SHIM_ERROR(
        "no utility VM image: %s or %s %s (make one with `%s -o %s`, "
        "or set kernel and initrd in %s)",
        cfg->kernel, cfg->initrd,
        status == -ENOENT ? "is missing" : "could not be built", cfg->mkuvm,
        cfg->image_dir, cfg->path != NULL ? cfg->path : "the shim's config");
    set_failed(sb, status, "no utility VM image%s: %s", "");
    return;
  }
  r = start_vm(sb, cfg, sb->console_log);
  if (r != 0) set_failed(sb, r, "the utility VM did not start%s: %s", "");
}

/* ------------------------------------------------------------------------ */

static void free_sb(hcsb__sandbox_t *sb) {
  size_t i;

  for (i = 0; i < sb->nfiles; i++) free(sb->file_bufs[i]);
  free(sb->file_bufs);
  free(sb->files);
  free(sb->console_log);
  free(sb);
}

static void on_part_closed(void *data) {
  hcsb__sandbox_t *sb = data;

  if (--sb->pending > 0) return;
  if (sb->state != NULL) {
    if (sb->qemu_pid > 0) hcsb__shim_state_remove_pid(sb->state, sb->qemu_pid);
    if (sb->vsockd_pid > 0)
      hcsb__shim_state_remove_pid(sb->state, sb->vsockd_pid);
  }
  if (sb->close_cb != NULL) sb->close_cb(sb->close_data);
  free_sb(sb);
}

static void on_timer_closed(uv_handle_t *h) {
  on_part_closed(h->data);
}

int hcsb__sandbox_start(uv_loop_t *loop, const hcsb__shim_config_t *cfg,
                        hcsb__shim_state_t *state, const char *console_log,
                        hcsb__sandbox_t **out) {
  hcsb__sandbox_t *sb;
  int r;

  if (loop == NULL || cfg == NULL || out == NULL) return -EINVAL;
  sb = calloc(1, sizeof(*sb));
  if (sb == NULL) return -ENOMEM;
  sb->loop = loop;
  sb->state = state;
  sb->cfg = cfg;
  sb->times.started_ms = now_ms();
  sb->is_vm = cfg->guest == NULL;
  if (console_log != NULL && (sb->console_log = strdup(console_log)) == NULL) {
    free_sb(sb);
    return -ENOMEM;
  }
  /* The VM's image may have to be built first (the default one, on first
   * use): the VM starts from the loop once it is there. */
  r = sb->is_vm ? hcsb__shim_image_ensure(loop, cfg, on_image, sb)
                : start_address(sb, cfg);
  if (r != 0) {
    free_sb(sb);
    return r;
  }
  sb->image_pending = sb->is_vm;
  uv_timer_init(loop, &sb->timer);
  sb->timer.data = sb;
  *out = sb;
  return 0;
}

int hcsb__sandbox_when_ready(hcsb__sandbox_t *sb, hcsb__sandbox_ready_cb cb,
                             void *data) {
  waiter_t *w, **tail;

  if (sb->closing) return -ECANCELED;
  w = calloc(1, sizeof(*w));
  if (w == NULL) return -ENOMEM;
  w->cb = cb;
  w->data = data;
  for (tail = &sb->waiters; *tail != NULL; tail = &(*tail)->next) {
  }
  *tail = w;
  if (sb->ready || sb->status != 0) schedule(sb);
  return 0;
}

hcsb_conn_t *hcsb__sandbox_conn(const hcsb__sandbox_t *sb) {
  return sb->ready && sb->status == 0 ? sb->conn : NULL;
}

int hcsb__sandbox_is_vm(const hcsb__sandbox_t *sb) {
  return sb->is_vm;
}

const char *hcsb__sandbox_error(const hcsb__sandbox_t *sb) {
  return sb->error;
}

void hcsb__sandbox_times(const hcsb__sandbox_t *sb, hcsb__sandbox_times_t *t) {
  *t = sb->times;
}

void hcsb__sandbox_set_lost_cb(hcsb__sandbox_t *sb, hcsb__sandbox_lost_cb cb,
                               void *data) {
  sb->lost_cb = cb;
  sb->lost_data = data;
}

int hcsb__sandbox_create_container(hcsb__sandbox_t *sb,
                                   const hcsb_container_config_t *config,
                                   const char *const *layers, size_t nlayers,
                                   hcsb_container_cb cb, void *data,
                                   hcsb_container_t **out) {
  hcsb_container_config_t c;

  if (hcsb__sandbox_conn(sb) == NULL) return -ENOTCONN;
  if (config->nlayers != 0) return -EINVAL;
  if (sb->is_vm && nlayers > 0) {
    hcsb_uvm_layer_t *l = calloc(nlayers, sizeof(*l));
    size_t i;
    int r;
    if (l == NULL) return -ENOMEM;
    for (i = 0; i < nlayers; i++) l[i].image_path = layers[i];
    r = hcsb_uvm_create_container(sb->uvm, NULL, config, l, nlayers, cb, data,
                                  out);
    free(l);
    return r;
  }
  {
    const char *top_first[64];
    size_t i;
    if (nlayers > sizeof top_first / sizeof top_first[0]) return -E2BIG;
    for (i = 0; i < nlayers; i++) top_first[i] = layers[nlayers - 1 - i];
    c = *config;
    c.layers = top_first;
    c.nlayers = nlayers;
    return hcsb_conn_create_container(sb->conn, NULL, &c, cb, data, out);
  }
}

int hcsb__sandbox_delete_container(hcsb__sandbox_t *sb, const char *id,
                                   hcsb_done_cb cb, void *data) {
  if (hcsb__sandbox_conn(sb) == NULL) return -ENOTCONN;
  if (sb->is_vm) return hcsb_uvm_delete_container(sb->uvm, NULL, id, cb, data);
  return hcsb_conn_delete_container_state(sb->conn, NULL, id, cb, data);
}

/* Close, second half (a later turn): waiters hear why, then the guest and
 * the timer go. */
static void on_close_turn(uv_timer_t *t) {
  hcsb__sandbox_t *sb = t->data;

  fire_waiters(t);
  /* What must be gone before the memory: the timer, the VM or the
   * connection, an image build still running. */
  sb->pending = 1 + (sb->uvm != NULL || sb->conn != NULL) + sb->image_pending;
  uv_close((uv_handle_t *)&sb->timer, on_timer_closed);
  if (sb->uvm != NULL)
    hcsb_uvm_close(sb->uvm, on_part_closed, sb);
  else if (sb->conn != NULL)
    hcsb_conn_close(sb->conn, on_part_closed, sb);
}

void hcsb__sandbox_close(hcsb__sandbox_t *sb, hcsb_close_cb cb, void *data) {
  if (sb == NULL || sb->closing) return;
  if (sb->status == 0) {
    sb->status = -ECANCELED;
    snprintf(sb->error, sizeof sb->error, "the shim is shutting down");
  }
  sb->closing = 1;
  sb->close_cb = cb;
  sb->close_data = data;
  uv_timer_stop(&sb->timer);
  uv_timer_start(&sb->timer, on_close_turn, 0, 0);
}
