/* hcsbctl --uvm: boots a utility VM with the library's hcsb_uvm and runs
 * the command against the guest in it.
 *
 * The image is hcsb-mkuvm's: --uvm-image DIR (or $HCSB_UVM_IMAGE) as it
 * is, with --uvm-guest and --uvm-file appended to its initrd by the
 * library (files taken as they are); without one, hcsb-mkuvm builds a
 * private image for this run with the guest program and files given (ELF
 * files bring their libraries), removed afterwards.  The serial console
 * goes to a private log that is kept, and named, only when the VM failed:
 * it did not start, or it stopped while the command ran. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hcsbctl.h"

typedef struct vm_wait_s {
  int done;
  int status;
} vm_wait_t;

static void vm_started(void *data, hcsb_uvm_t *u, int status,
                       hcsb_conn_t *conn) {
  vm_wait_t *w = data;
  (void)u, (void)conn;
  w->status = status;
  w->done = 1;
}

static void vm_log(void *data, hcsb_log_level_t level, const char *aid,
                   const char *msg) {
  static const char *const names[] = {"error", "warn", "info", "debug",
                                      "trace"};
  (void)aid;
  ctl_errorf(data, "uvm %s: %s",
             names[level <= HCSB_LOG_TRACE ? level : HCSB_LOG_TRACE], msg);
}

static void conn_log(void *data, hcsb_log_level_t level, const char *aid,
                     const char *msg) {
  static const char *const names[] = {"error", "warn", "info", "debug",
                                      "trace"};
  ctl_errorf(data, "%s%s%s%s %s",
             names[level <= HCSB_LOG_TRACE ? level : HCSB_LOG_TRACE],
             aid ? " [" : "", aid ? aid : "", aid ? "]" : "", msg);
}

static void guest_log(void *data, const hcsb_guest_log_record_t *r) {
  if (r->msg)
    ctl_errorf(data, "guest: %s %s", r->level ? r->level : "", r->msg);
  else
    ctl_errorf(data, "guest: %.*s", (int)r->line_len, r->line);
}

/* The last `lines` lines of `text`, each as "hcsbctl:   | line". */
static void print_tail(ctl_t *ctl, const char *what, const char *text,
                       int lines) {
  const char *p = text + strlen(text);
  int n = 0;
  while (p > text && n <= lines) {
    p--;
    if (*p == '\n' && p[1] != '\0') n++;
  }
  if (*p == '\n') p++;
  if (*p == '\0') return;
  ctl_errorf(ctl, "%s:", what);
  while (*p) {
    const char *e = strchr(p, '\n');
    int len = e ? (int)(e - p) : (int)strlen(p);
    ctl_errorf(ctl, "  | %.*s", len, p);
    p += len + (e != NULL);
  }
}

static void explain_exit(ctl_t *ctl, const hcsb_uvm_exit_t *e) {
  if (e->time_limit)
    ctl_errorf(ctl, "QEMU was killed at the time limit (--uvm-time-limit)");
  else if (e->term_signal)
    ctl_errorf(ctl, "QEMU was killed by signal %d", e->term_signal);
  else
    ctl_errorf(ctl, "QEMU exited with status %lld", (long long)e->exit_status);
  print_tail(ctl, "the console's last lines", e->console_tail, 12);
  print_tail(ctl, "QEMU said", e->stderr_tail, 6);
}

static void vm_exited(void *data, hcsb_uvm_t *u, const hcsb_uvm_exit_t *e) {
  ctl_t *ctl = data;
  (void)u;
  /* A guest that powers off while a command runs is a failure of the VM,
   * not of the command: worth the console log. */
  ctl->uvm_failed = "the VM stopped while the command ran";
  ctl_errorf(ctl, "the utility VM stopped");
  explain_exit(ctl, e);
}

/* The directory of this program (a build tree's libtool wrapper keeps the
 * real binary in .libs/ below it); "" when unknown. */
static void self_dir(char *dir, size_t len) {
  ssize_t n = readlink("/proc/self/exe", dir, len - 1);
  char *slash;
  if (n <= 0) {
    dir[0] = '\0';
    return;
  }
  dir[n] = '\0';
  slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  slash = strrchr(dir, '/');
  if (slash && strcmp(slash, "/.libs") == 0) *slash = '\0';
}

/* Run from a build tree, the helpers (hcsb-vsockd, hcsb-uvm-exec, the
 * guest hcsb-mkuvm puts in the image) are the ones beside this program:
 * say so to the library and hcsb-mkuvm, unless the caller already did. */
static void prefer_build_tree(void) {
  char dir[PATH_MAX], p[PATH_MAX + 32];
  const char *env = getenv("HCSB_LIBEXECDIR");
  if (env && *env) return;
  self_dir(dir, sizeof(dir));
  snprintf(p, sizeof(p), "%s/hcsb-uvm-exec", dir);
  if (dir[0] && access(p, X_OK) == 0) setenv("HCSB_LIBEXECDIR", dir, 1);
}

/* hcsb-mkuvm: $HCSB_MKUVM; beside this program (a build tree keeps it in
 * src/mkuvm/, an installation in the same bindir); else PATH. */
static void find_mkuvm(ctl_buf_t *out) {
  const char *env = getenv("HCSB_MKUVM");
  char dir[PATH_MAX];
  if (env && *env) {
    ctl_buf_printf(out, "%s", env);
    return;
  }
  self_dir(dir, sizeof(dir));
  if (dir[0]) {
    static const char *const rel[] = {"mkuvm/hcsb-mkuvm", "hcsb-mkuvm"};
    for (int i = 0; i < 2; i++) {
      out->len = 0;
      ctl_buf_printf(out, "%s/%s", dir, rel[i]);
      if (access(out->data, X_OK) == 0) return;
    }
  }
  out->len = 0;
  ctl_buf_printf(out, "hcsb-mkuvm");
}

typedef struct mk_s {
  int done;
  int64_t status;
  int signal;
} mk_t;

static void mk_exited(uv_process_t *p, int64_t status, int signum) {
  mk_t *m = p->data;
  m->status = status;
  m->signal = signum;
  m->done = 1;
  uv_close((uv_handle_t *)p, NULL);
}

/* Builds this run's image into <tmp>/image with hcsb-mkuvm. */
static int build_image(ctl_t *ctl, char *dir, size_t len) {
  ctl_buf_t prog = {0};
  char **args = calloc(8 + 2 * ctl->nuvm_files, sizeof(*args));
  size_t n = 0;
  uv_process_t proc;
  uv_process_options_t po;
  uv_stdio_container_t stdio[3];
  mk_t m = {0};
  int rc;

  if (args == NULL) return -ENOMEM;
  snprintf(dir, len, "%s/image", ctl->uvm_tmp);
  find_mkuvm(&prog);
  args[n++] = prog.data;
  args[n++] = "-q";
  args[n++] = "-o";
  args[n++] = dir;
  if (ctl->uvm_guest) {
    args[n++] = "--guest";
    args[n++] = (char *)ctl->uvm_guest;
  }
  for (size_t i = 0; i < ctl->nuvm_files; i++) {
    args[n++] = "--guest-file";
    args[n++] = (char *)ctl->uvm_files[i];
  }
  args[n] = NULL;
  memset(&po, 0, sizeof(po));
  memset(stdio, 0, sizeof(stdio));
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = 2; /* its messages are ours: on stderr */
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  po.file = prog.data;
  po.args = args;
  po.stdio = stdio;
  po.stdio_count = 3;
  po.exit_cb = mk_exited;
  proc.data = &m;
  rc = uv_spawn(&ctl->loop, &proc, &po);
  if (rc != 0) {
    uv_close((uv_handle_t *)&proc, NULL);
    ctl_errorf(ctl, "cannot run %s: %s", prog.data, uv_strerror(rc));
  } else {
    ctl_await(ctl, &m.done);
    if (m.status != 0 || m.signal != 0) {
      ctl_errorf(ctl, "%s could not build the utility VM image", prog.data);
      rc = -EIO;
    }
  }
  uv_run(&ctl->loop, UV_RUN_NOWAIT); /* the process handle's close */
  ctl_buf_free(&prog);
  free(args);
  return rc;
}

/* Splits "SRC[:DEST]" into the file list the library takes. */
static hcsb_uvm_file_t *file_list(ctl_t *ctl) {
  hcsb_uvm_file_t *f = calloc(ctl->nuvm_files + 1, sizeof(*f));
  if (f == NULL) return NULL;
  for (size_t i = 0; i < ctl->nuvm_files; i++) {
    char *spec = strdup(ctl->uvm_files[i]);
    char *colon = spec ? strchr(spec, ':') : NULL;
    if (spec == NULL) break;
    if (colon) *colon = '\0';
    f[i].src = spec;
    f[i].dest = colon ? colon + 1 : NULL;
  }
  return f;
}

static void file_list_free(ctl_t *ctl, hcsb_uvm_file_t *f) {
  if (f == NULL) return;
  for (size_t i = 0; i < ctl->nuvm_files; i++) free((char *)f[i].src);
  free(f);
}

int ctl_uvm_connect(ctl_t *ctl) {
  hcsb_uvm_options_t o;
  hcsb_conn_options_t co;
  hcsb_uvm_file_t *files = NULL;
  char image[PATH_MAX], console[PATH_MAX];
  const char *tmpdir = getenv("TMPDIR"), *prebuilt;
  vm_wait_t w = {0};
  uint64_t t0 = uv_hrtime();
  int rc, st = CTL_EXIT_CONN;

  char *tmpl = malloc(PATH_MAX);
  if (tmpl == NULL) return CTL_EXIT_FAILED;
  snprintf(tmpl, PATH_MAX, "%s/hcsbctl-uvm.XXXXXX",
           tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (mkdtemp(tmpl) == NULL) {
    ctl_errorf(ctl, "cannot create %s: %s", tmpl, strerror(errno));
    free(tmpl);
    return CTL_EXIT_FAILED;
  }
  ctl->uvm_tmp = tmpl;
  snprintf(console, sizeof(console), "%s/console.log", tmpl);
  prefer_build_tree();

  hcsb_uvm_options_init(&o);
  prebuilt = ctl->uvm_image ? ctl->uvm_image : getenv("HCSB_UVM_IMAGE");
  if (prebuilt && *prebuilt) {
    o.image_dir = prebuilt;
    /* The library appends these to the image's initrd. */
    o.guest_cmd = ctl->uvm_guest;
    files = file_list(ctl);
    o.guest_files = files;
    o.nguest_files = ctl->nuvm_files;
  } else {
    if (build_image(ctl, image, sizeof(image)) != 0) {
      ctl->uvm_failed = "the VM image could not be built";
      return CTL_EXIT_CONN;
    }
    o.image_dir = image;
  }
  /* A signal while the image was built: no VM to start. */
  if (ctl->interrupted) return 128 + ctl->interrupted;
  o.accel = ctl->uvm_accel;
  if (ctl->uvm_memory_mb) o.memory_mb = ctl->uvm_memory_mb;
  o.time_limit_s = ctl->uvm_time_limit_s;
  if (ctl->timeout_ms) o.boot_timeout_ms = ctl->timeout_ms;
  o.console_log = console;
  o.run_dir = tmpdir && *tmpdir ? tmpdir : NULL;
  if (ctl->verbose) {
    o.log_cb = vm_log;
    o.log_data = ctl;
    o.log_level = ctl->verbose > 1 ? HCSB_LOG_DEBUG : HCSB_LOG_INFO;
  }
  hcsb_conn_options_init(&co);
  if (ctl->timeout_ms)
    co.call_timeout_ms = co.shutdown_timeout_ms = ctl->timeout_ms;
  co.entropy = 1; /* a GCS's init may wait for it */
  if (ctl->verbose) {
    co.log_cb = conn_log;
    co.log_data = ctl;
    co.log_level = ctl->verbose > 1 ? HCSB_LOG_TRACE_SECRETS : HCSB_LOG_TRACE;
    co.guest_log_cb = guest_log;
    co.guest_log_data = ctl;
  }
  o.conn_options = &co;

  rc = hcsb_uvm_start(&ctl->loop, &o, vm_started, &w, &ctl->vm);
  file_list_free(ctl, files);
  if (rc != 0) {
    ctl_errorf(ctl, "cannot start the utility VM: %s%s", hcsb_strerror(rc),
               ctl->verbose ? "" : " (-v says why)");
    ctl->vm = NULL;
    return rc == -EINVAL || rc == -ENOENT ? CTL_EXIT_USAGE : CTL_EXIT_CONN;
  }
  ctl_await(ctl, &w.done);
  if (w.status != 0 && ctl->interrupted) {
    return 128 + ctl->interrupted; /* stopped by a signal: main says so */
  } else if (w.status != 0) {
    hcsb_uvm_exit_t e;
    /* Where nested KVM is broken the guest hangs without a word: the
     * timeout is all there is to see, so name the way out. */
    int kvm_hang = w.status == -ETIMEDOUT && o.accel != NULL &&
                   strcmp(o.accel, "kvm") == 0;
    ctl_errorf(ctl, "the utility VM did not start: %s%s",
               hcsb_strerror(w.status),
               kvm_hang ? " under KVM (where nested KVM is broken the guest "
                          "hangs silently: try --uvm-accel tcg)"
                        : "");
    if (hcsb_uvm_exit_info(ctl->vm, &e) == 0) explain_exit(ctl, &e);
    ctl->uvm_failed = "the VM did not start";
    return w.status == -ETIMEDOUT ? CTL_EXIT_TIMEOUT : st;
  }
  if (ctl->verbose)
    ctl_errorf(ctl, "utility VM up in %.2f s", (uv_hrtime() - t0) / 1e9);
  hcsb_uvm_set_exit_cb(ctl->vm, vm_exited, ctl);
  ctl->conn = hcsb_uvm_conn(ctl->vm);
  return CTL_EXIT_OK;
}

static void vm_closed(void *data) {
  *(int *)data = 1;
}

/* Removes a directory tree of our own making (files and directories). */
static void rm_tree(const char *path) {
  struct stat st;
  DIR *d;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char p[PATH_MAX];
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
      rm_tree(p);
    }
    closedir(d);
  }
  remove(path);
}

/* Closes the VM, then removes the private directory (built image, console
 * log) unless the VM failed: then the console log stays and is named. */
void ctl_uvm_close(ctl_t *ctl) {
  if (ctl->vm) {
    int closed = 0;
    hcsb_uvm_set_exit_cb(ctl->vm, NULL, NULL);
    hcsb_uvm_close(ctl->vm, vm_closed, &closed);
    ctl_await(ctl, &closed);
    ctl->vm = NULL;
    ctl->conn = NULL; /* closed with the VM */
  }
  if (ctl->uvm_tmp == NULL) return;
  if (ctl->uvm_failed) {
    char image[PATH_MAX + 16];
    snprintf(image, sizeof(image), "%s/image", ctl->uvm_tmp);
    rm_tree(image);
    ctl_errorf(ctl, "console log kept: %s/console.log (%s)", ctl->uvm_tmp,
               ctl->uvm_failed);
  } else {
    rm_tree(ctl->uvm_tmp);
  }
  free(ctl->uvm_tmp);
  ctl->uvm_tmp = NULL;
}
