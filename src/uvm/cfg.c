/* The VM's options: checked, defaults filled in, copied (uvm-int.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uvm/cpio.h"
#include "uvm/uvm-int.h"

#ifndef HCSB_LIBEXECDIR
#define HCSB_LIBEXECDIR "/usr/local/libexec"
#endif

void hcsb_uvm_options_init(hcsb_uvm_options_t *o) {
  memset(o, 0, sizeof *o);
  o->accel = "tcg";
  o->memory_mb = 256;
  o->cpus = 1;
  o->vpmem_slots = 8;
  o->vpmem_max_mb = 8192;
  o->boot_timeout_ms = 120000;
  o->qmp_timeout_ms = 10000;
  o->vpmem_timeout_ms = 60000;
  o->shutdown_timeout_ms = 10000;
  o->log_level = HCSB_LOG_WARN;
}

static int why(char *buf, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int why(char *buf, size_t len, int rc, const char *fmt, ...) {
  va_list ap;
  if (buf != NULL && len > 0) {
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int dup_str(char **out, const char *s) {
  *out = NULL;
  if (s == NULL) return 0;
  *out = strdup(s);
  return *out != NULL ? 0 : -ENOMEM;
}

static int join(char **out, const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  *out = malloc(n);
  if (*out == NULL) return -ENOMEM;
  snprintf(*out, n, "%s/%s", dir, name);
  return 0;
}

/* A regular, readable file (kernel, initrd, guest files). */
static int check_file(const char *what, const char *path, struct stat *st,
                      char *w, size_t wl) {
  if (stat(path, st) != 0)
    return why(w, wl, -errno, "%s %s: %s", what, path, strerror(errno));
  if (!S_ISREG(st->st_mode))
    return why(w, wl, -EINVAL, "%s %s: not a regular file", what, path);
  if (access(path, R_OK) != 0)
    return why(w, wl, -errno, "%s %s: %s", what, path, strerror(errno));
  return 0;
}

/* Resolves a program: a path as it is; a bare name in PATH. */
static int find_program(char **out, const char *what, const char *prog, char *w,
                        size_t wl) {
  const char *path, *p, *c;

  *out = NULL;
  if (strchr(prog, '/') != NULL) {
    if (access(prog, X_OK) != 0)
      return why(w, wl, -errno, "%s %s: %s", what, prog, strerror(errno));
    return dup_str(out, prog);
  }
  path = getenv("PATH");
  if (path == NULL || path[0] == '\0') path = "/usr/local/bin:/usr/bin:/bin";
  for (p = path;; p = c + 1) {
    char cand[PATH_MAX + 256];
    size_t n;
    c = strchr(p, ':');
    n = c != NULL ? (size_t)(c - p) : strlen(p);
    if (n > 0 && n + strlen(prog) + 2 <= PATH_MAX) {
      snprintf(cand, sizeof cand, "%.*s/%s", (int)n, p, prog);
      if (access(cand, X_OK) == 0) return dup_str(out, cand);
    }
    if (c == NULL) break;
  }
  return why(w, wl, -ENOENT, "%s %s: not found in PATH", what, prog);
}

/* hcsb-vsockd and hcsb-uvm-exec: given, else $HCSB_LIBEXECDIR, else the
 * installed libexecdir. */
static int find_libexec(char **out, const char *given, const char *name,
                        char *w, size_t wl) {
  const char *dir = getenv("HCSB_LIBEXECDIR");
  char *p;
  int rc;

  if (given != NULL) return find_program(out, name, given, w, wl);
  rc = join(&p, dir != NULL && dir[0] != '\0' ? dir : HCSB_LIBEXECDIR, name);
  if (rc != 0) return rc;
  rc = find_program(out, name, p, w, wl);
  free(p);
  return rc;
}

static int check_range(const char *name, uint32_t v, uint32_t lo, uint32_t hi,
                       char *w, size_t wl) {
  if (v < lo || v > hi)
    return why(w, wl, -EINVAL, "%s %u is out of range (%u..%u)", name,
               (unsigned)v, (unsigned)lo, (unsigned)hi);
  return 0;
}

static int copy_files(hcsb__uvm_cfg_t *c, const hcsb_uvm_options_t *o, char *w,
                      size_t wl) {
  if (o->nguest_files == 0) return 0;
  if (o->guest_files == NULL)
    return why(w, wl, -EINVAL, "nguest_files without guest_files");
  c->files = calloc(o->nguest_files, sizeof *c->files);
  if (c->files == NULL) return -ENOMEM;
  for (size_t i = 0; i < o->nguest_files; i++) {
    const hcsb_uvm_file_t *f = &o->guest_files[i];
    hcsb__uvm_file_t *d = &c->files[i];
    struct stat st;
    const char *base;
    int rc;

    c->nfiles = i + 1;
    if (f->src == NULL || f->src[0] == '\0')
      return why(w, wl, -EINVAL, "guest file %zu has no source", i);
    rc = check_file("guest file", f->src, &st, w, wl);
    if (rc != 0) return rc;
    if ((uint64_t)st.st_size > UINT32_MAX)
      return why(w, wl, -EINVAL, "guest file %s is over 4 GiB", f->src);
    d->mode = (uint32_t)(st.st_mode & 07777) | 0100000;
    d->size = (uint64_t)st.st_size;
    if (dup_str(&d->src, f->src) != 0) return -ENOMEM;
    if (f->dest != NULL) {
      if (hcsb__cpio_check_path(f->dest) != 0)
        return why(w, wl, -EINVAL,
                   "guest file destination '%s' is not an absolute path "
                   "without '.', '..' or empty parts",
                   f->dest);
      rc = dup_str(&d->dest, f->dest);
    } else {
      base = strrchr(f->src, '/');
      base = base != NULL ? base + 1 : f->src;
      if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return why(w, wl, -EINVAL, "guest file %s has no name", f->src);
      rc = join(&d->dest, (st.st_mode & 0111) ? "/bin" : "", base);
    }
    if (rc != 0) return rc;
  }
  return 0;
}

static int cfg_fill(hcsb__uvm_cfg_t *c, const hcsb_uvm_options_t *o, char *w,
                    size_t wl) {
  hcsb_uvm_options_t d;
  struct stat st;
  const char *tmp;
  int rc;

  hcsb_uvm_options_init(&d);
  /* The image. */
  if (o->kernel != NULL) {
    rc = dup_str(&c->kernel, o->kernel);
  } else if (o->image_dir != NULL) {
    rc = join(&c->kernel, o->image_dir, "vmlinuz");
  } else {
    return why(w, wl, -EINVAL, "no kernel (kernel or image_dir)");
  }
  if (rc != 0) return rc;
  if (o->initrd != NULL) {
    rc = dup_str(&c->initrd, o->initrd);
  } else if (o->image_dir != NULL) {
    rc = join(&c->initrd, o->image_dir, "initrd.img");
  } else {
    return why(w, wl, -EINVAL, "no initrd (initrd or image_dir)");
  }
  if (rc != 0) return rc;
  if ((rc = check_file("kernel", c->kernel, &st, w, wl)) != 0 ||
      (rc = check_file("initrd", c->initrd, &st, w, wl)) != 0)
    return rc;
  if (dup_str(&c->kernel_args, o->kernel_args) != 0) return -ENOMEM;
  if (o->guest_cmd != NULL) {
    if (o->guest_cmd[0] == '\0' || strchr(o->guest_cmd, '\n') != NULL)
      return why(w, wl, -EINVAL, "guest_cmd is empty or has a line break");
    if (dup_str(&c->guest_cmd, o->guest_cmd) != 0) return -ENOMEM;
  }
  if ((rc = copy_files(c, o, w, wl)) != 0) return rc;

  /* The machine. */
  if (o->accel != NULL && strcmp(o->accel, "tcg") != 0 &&
      strcmp(o->accel, "kvm") != 0)
    return why(w, wl, -EINVAL, "accelerator '%s': tcg or kvm", o->accel);
  if (dup_str(&c->accel, o->accel != NULL ? o->accel : d.accel) != 0)
    return -ENOMEM;
  c->memory_mb = o->memory_mb ? o->memory_mb : d.memory_mb;
  c->cpus = o->cpus ? o->cpus : d.cpus;
  c->vpmem_slots = o->vpmem_slots ? o->vpmem_slots : d.vpmem_slots;
  c->vpmem_max_mb = o->vpmem_max_mb ? o->vpmem_max_mb : d.vpmem_max_mb;
  if ((rc = check_range("memory_mb", c->memory_mb, 64, 65536, w, wl)) != 0 ||
      (rc = check_range("cpus", c->cpus, 1, 64, w, wl)) != 0 ||
      (rc = check_range("vpmem_slots", c->vpmem_slots, 1, HCSB__UVM_MAX_SLOTS,
                        w, wl)) != 0 ||
      (rc = check_range("vpmem_max_mb", c->vpmem_max_mb, 2, 1u << 22, w, wl)) !=
          0)
    return rc;
  if (c->vpmem_max_mb % 2 != 0)
    return why(w, wl, -EINVAL, "vpmem_max_mb %u is not a multiple of 2 MiB",
               (unsigned)c->vpmem_max_mb);
  if (o->vpmem_wait != HCSB_UVM_VPMEM_WAIT_PROCESS &&
      o->vpmem_wait != HCSB_UVM_VPMEM_WAIT_NONE)
    return why(w, wl, -EINVAL, "unknown vpmem_wait %d", (int)o->vpmem_wait);
  c->vpmem_wait = o->vpmem_wait;

  /* Bounds. */
  c->time_limit_s = o->time_limit_s;
  c->boot_timeout_ms =
      o->boot_timeout_ms ? o->boot_timeout_ms : d.boot_timeout_ms;
  c->qmp_timeout_ms = o->qmp_timeout_ms ? o->qmp_timeout_ms : d.qmp_timeout_ms;
  c->vpmem_timeout_ms =
      o->vpmem_timeout_ms ? o->vpmem_timeout_ms : d.vpmem_timeout_ms;
  c->shutdown_timeout_ms =
      o->shutdown_timeout_ms ? o->shutdown_timeout_ms : d.shutdown_timeout_ms;

  /* Programs and places. */
  if ((rc = find_program(&c->qemu, "QEMU",
                         o->qemu != NULL ? o->qemu : "qemu-system-x86_64", w,
                         wl)) != 0 ||
      (rc = find_libexec(&c->vsockd, o->vsockd, "hcsb-vsockd", w, wl)) != 0 ||
      (rc = find_libexec(&c->exec_wrapper, o->exec_wrapper, "hcsb-uvm-exec", w,
                         wl)) != 0)
    return rc;
  tmp = o->run_dir != NULL ? o->run_dir : getenv("TMPDIR");
  if (tmp == NULL || tmp[0] == '\0') tmp = "/tmp";
  if (dup_str(&c->run_parent, tmp) != 0 ||
      dup_str(&c->console_log, o->console_log) != 0)
    return -ENOMEM;
  if (o->nqemu_args > 0) {
    if (o->qemu_args == NULL)
      return why(w, wl, -EINVAL, "nqemu_args without qemu_args");
    c->qemu_args = calloc(o->nqemu_args, sizeof *c->qemu_args);
    if (c->qemu_args == NULL) return -ENOMEM;
    for (size_t i = 0; i < o->nqemu_args; i++) {
      c->nqemu_args = i + 1;
      if (o->qemu_args[i] == NULL)
        return why(w, wl, -EINVAL, "qemu_args[%zu] is NULL", i);
      if (dup_str(&c->qemu_args[i], o->qemu_args[i]) != 0) return -ENOMEM;
    }
  }

  /* The connection and the log. */
  if (o->conn_options != NULL) {
    c->conn = *o->conn_options;
  } else {
    hcsb_conn_options_init(&c->conn);
    c->conn.log_cb = o->log_cb;
    c->conn.log_data = o->log_data;
    c->conn.log_level = o->log_level;
  }
  c->conn.address = NULL;
  c->log_cb = o->log_cb;
  c->log_data = o->log_data;
  c->log_level = o->log_level;
  return 0;
}

int hcsb__uvm_cfg_init(hcsb__uvm_cfg_t *c, const hcsb_uvm_options_t *o, char *w,
                       size_t wl) {
  int rc;

  memset(c, 0, sizeof *c);
  if (w != NULL && wl > 0) w[0] = '\0';
  if (o == NULL) return why(w, wl, -EINVAL, "no options");
  rc = cfg_fill(c, o, w, wl);
  if (rc != 0) {
    if (rc == -ENOMEM) why(w, wl, rc, "out of memory");
    hcsb__uvm_cfg_free(c);
  }
  return rc;
}

void hcsb__uvm_cfg_free(hcsb__uvm_cfg_t *c) {
  free(c->kernel);
  free(c->initrd);
  free(c->kernel_args);
  free(c->guest_cmd);
  for (size_t i = 0; i < c->nfiles; i++) {
    free(c->files[i].src);
    free(c->files[i].dest);
  }
  free(c->files);
  free(c->accel);
  free(c->qemu);
  free(c->vsockd);
  free(c->exec_wrapper);
  free(c->run_parent);
  free(c->console_log);
  for (size_t i = 0; i < c->nqemu_args; i++) free(c->qemu_args[i]);
  free(c->qemu_args);
  memset(c, 0, sizeof *c);
}
