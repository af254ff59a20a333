/* QEMU's and hcsb-vsockd's command lines (uvm-int.h).  No I/O. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvm/uvm-int.h"

int hcsb__argv_add(hcsb__argv_t *a, const char *fmt, ...) {
  va_list ap;
  char *s;
  int n;

  if (a->oom) return -ENOMEM;
  if (a->n + 2 > a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 32;
    char **v = realloc(a->v, cap * sizeof *v);
    if (v == NULL) goto oom;
    a->v = v;
    a->cap = cap;
  }
  va_start(ap, fmt);
  n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) goto oom;
  a->v[a->n++] = s;
  a->v[a->n] = NULL;
  return 0;
oom:
  a->oom = 1;
  return -ENOMEM;
}

void hcsb__argv_free(hcsb__argv_t *a) {
  for (size_t i = 0; i < a->n; i++) free(a->v[i]);
  free(a->v);
  memset(a, 0, sizeof *a);
}

/* QEMU's -chardev and -device options are comma-separated: a comma in a
 * value is written twice. */
static int add_opt_path(hcsb__argv_t *a, const char *prefix, const char *path,
                        const char *suffix) {
  size_t n = 0;
  char *esc = malloc(strlen(path) * 2 + 1);
  int rc;

  if (esc == NULL) {
    a->oom = 1;
    return -ENOMEM;
  }
  for (const char *p = path; *p; p++) {
    esc[n++] = *p;
    if (*p == ',') esc[n++] = ',';
  }
  esc[n] = '\0';
  rc = hcsb__argv_add(a, "%s%s%s", prefix, esc, suffix);
  free(esc);
  return rc;
}

int hcsb__uvm_qemu_argv(const hcsb__uvm_cfg_t *c, const char *run_dir,
                        const char *initrd, int parent, hcsb__argv_t *a) {
  memset(a, 0, sizeof *a);
  hcsb__argv_add(a, "%s", c->exec_wrapper);
  hcsb__argv_add(a, "%d", parent);
  hcsb__argv_add(a, "%s", c->qemu);
  /* No network, no display, no default devices; a guest reboot (a kernel
   * panic with panic=-1, say) ends QEMU instead. */
  hcsb__argv_add(a, "-accel");
  hcsb__argv_add(a, "%s", c->accel);
  hcsb__argv_add(a, "-nodefaults");
  hcsb__argv_add(a, "-no-user-config");
  hcsb__argv_add(a, "-nic");
  hcsb__argv_add(a, "none");
  hcsb__argv_add(a, "-display");
  hcsb__argv_add(a, "none");
  hcsb__argv_add(a, "-no-reboot");
  /* QMP and the serial console on sockets this process holds the other
   * ends of: nothing to connect to, nothing left behind. */
  hcsb__argv_add(a, "-chardev");
  hcsb__argv_add(a, "socket,id=qmp,fd=%d", HCSB__UVM_QMP_FD);
  hcsb__argv_add(a, "-mon");
  hcsb__argv_add(a, "chardev=qmp,mode=control");
  hcsb__argv_add(a, "-chardev");
  hcsb__argv_add(a, "socket,id=con,fd=%d", HCSB__UVM_CONSOLE_FD);
  hcsb__argv_add(a, "-serial");
  hcsb__argv_add(a, "chardev:con");
  /* RAM in a shared memfd (the vhost-user backend maps it); maxmem leaves
   * room for the VPMem devices to come, one root port each. */
  hcsb__argv_add(a, "-m");
  hcsb__argv_add(a, "%uM,maxmem=%luM", (unsigned)c->memory_mb,
                 (unsigned long)c->memory_mb + c->vpmem_max_mb);
  hcsb__argv_add(a, "-smp");
  hcsb__argv_add(a, "%u", (unsigned)c->cpus);
  hcsb__argv_add(a, "-object");
  hcsb__argv_add(a, "memory-backend-memfd,id=mem,size=%uM,share=on",
                 (unsigned)c->memory_mb);
  hcsb__argv_add(a, "-machine");
  hcsb__argv_add(a, "q35,memory-backend=mem");
  for (uint32_t i = 1; i <= c->vpmem_slots; i++) {
    hcsb__argv_add(a, "-device");
    hcsb__argv_add(a, "pcie-root-port,id=rp%u,bus=pcie.0,chassis=%u,slot=%u",
                   (unsigned)i, (unsigned)i, (unsigned)i);
  }
  hcsb__argv_add(a, "-chardev");
  add_opt_path(a, "socket,id=vsk,path=", run_dir, "/vhost.sock");
  hcsb__argv_add(a, "-device");
  hcsb__argv_add(a, "vhost-user-vsock-pci,chardev=vsk");
  hcsb__argv_add(a, "-kernel");
  hcsb__argv_add(a, "%s", c->kernel);
  hcsb__argv_add(a, "-initrd");
  hcsb__argv_add(a, "%s", initrd);
  hcsb__argv_add(a, "-append");
  hcsb__argv_add(a, "console=ttyS0 panic=-1 quiet%s%s",
                 c->kernel_args != NULL && c->kernel_args[0] ? " " : "",
                 c->kernel_args != NULL ? c->kernel_args : "");
  for (size_t i = 0; i < c->nqemu_args; i++)
    hcsb__argv_add(a, "%s", c->qemu_args[i]);
  if (a->oom) {
    hcsb__argv_free(a);
    return -ENOMEM;
  }
  return 0;
}

int hcsb__uvm_vsockd_argv(const hcsb__uvm_cfg_t *c, const char *run_dir,
                          int parent, hcsb__argv_t *a) {
  memset(a, 0, sizeof *a);
  hcsb__argv_add(a, "%s", c->exec_wrapper);
  hcsb__argv_add(a, "%d", parent);
  hcsb__argv_add(a, "%s", c->vsockd);
  hcsb__argv_add(a, "--socket");
  hcsb__argv_add(a, "%s/vhost.sock", run_dir);
  hcsb__argv_add(a, "--uds-path");
  hcsb__argv_add(a, "%s/vsock", run_dir);
  /* The guest's CID is private to its own backend: any value works. */
  hcsb__argv_add(a, "--guest-cid");
  hcsb__argv_add(a, "3");
  hcsb__argv_add(a, "--ready-fd");
  hcsb__argv_add(a, "%d", HCSB__UVM_READY_FD);
  if (a->oom) {
    hcsb__argv_free(a);
    return -ENOMEM;
  }
  return 0;
}
