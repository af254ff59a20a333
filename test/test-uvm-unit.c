/* The utility VM's pieces without a VM: option checks, QEMU's and
 * hcsb-vsockd's command lines, the cpio writer and the per-run initrd. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"
#include "uvm/cpio.h"
#include "uvm/uvm-int.h"

static char kernel[512], initrd[512], exe[512], data[512];

/* A kernel, an initrd and two guest files that exist, and fake helper
 * programs where the library looks for them. */
static void setup(void) {
  const char *t = hcsb_test_tmpdir();
  char libexec[512], p[600];
  int fd;

  snprintf(kernel, sizeof kernel, "%s/vmlinuz", t);
  snprintf(initrd, sizeof initrd, "%s/initrd.img", t);
  snprintf(exe, sizeof exe, "%s/prog", t);
  snprintf(data, sizeof data, "%s/notes.txt", t);
  snprintf(libexec, sizeof libexec, "%s/libexec", t);
  mkdir(libexec, 0755);
  const char *files[] = {kernel, initrd, exe, data};
  for (int i = 0; i < 4; i++) {
    fd = open(files[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "abcde", 5), 5);
    close(fd);
  }
  chmod(exe, 0755);
  const char *progs[] = {"hcsb-vsockd", "hcsb-uvm-exec", "qemu-fake"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", libexec, progs[i]);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    CHECK(fd >= 0);
    close(fd);
  }
  setenv("HCSB_LIBEXECDIR", libexec, 1);
}

static void opts_ok(hcsb_uvm_options_t *o) {
  static char qemu[600];
  hcsb_uvm_options_init(o);
  o->kernel = kernel;
  o->initrd = initrd;
  snprintf(qemu, sizeof qemu, "%s/libexec/qemu-fake", hcsb_test_tmpdir());
  o->qemu = qemu;
}

static int cfg(const hcsb_uvm_options_t *o, hcsb__uvm_cfg_t *c) {
  char why[256];
  int rc = hcsb__uvm_cfg_init(c, o, why, sizeof why);
  if (rc != 0) {
    CHECK(why[0] != '\0'); /* every refusal says why */
    printf("# %s\n", why);
  }
  return rc;
}

static void test_uvm_options_defaults(void) {
  hcsb_uvm_options_t o;
  hcsb__uvm_cfg_t c;

  setup();
  opts_ok(&o);
  CHECK_STR(o.accel, "tcg");
  CHECK_EQ(o.memory_mb, 256);
  CHECK_EQ(o.cpus, 1);
  CHECK_EQ(o.vpmem_slots, 8);
  CHECK_EQ(o.boot_timeout_ms, 120000);
  CHECK_EQ(o.time_limit_s, 0);
  CHECK_EQ(cfg(&o, &c), 0);
  CHECK_STR(c.kernel, kernel);
  CHECK(c.vsockd != NULL && strstr(c.vsockd, "/libexec/hcsb-vsockd") != NULL);
  CHECK(strstr(c.exec_wrapper, "/libexec/hcsb-uvm-exec") != NULL);
  CHECK(!hcsb__uvm_cfg_overrides(&c));
  hcsb__uvm_cfg_free(&c);
  /* Zeros mean the defaults too. */
  memset(&o, 0, sizeof o);
  o.kernel = kernel;
  o.initrd = initrd;
  o.qemu = "/bin/true";
  CHECK_EQ(cfg(&o, &c), 0);
  CHECK_EQ(c.memory_mb, 256);
  CHECK_EQ(c.cpus, 1);
  CHECK_EQ(c.vpmem_slots, 8);
  CHECK_EQ(c.vpmem_max_mb, 8192);
  CHECK_EQ(c.qmp_timeout_ms, 10000);
  CHECK_STR(c.accel, "tcg");
  hcsb__uvm_cfg_free(&c);
}

static void test_uvm_options_image_dir(void) {
  hcsb_uvm_options_t o;
  hcsb__uvm_cfg_t c;
  char dir[600], p[700];
  int fd;

  setup();
  opts_ok(&o);
  o.kernel = o.initrd = NULL;
  snprintf(dir, sizeof dir, "%s/img", hcsb_test_tmpdir());
  o.image_dir = dir;
  CHECK_EQ(mkdir(dir, 0755), 0);
  CHECK_EQ(cfg(&o, &c), -ENOENT); /* no vmlinuz yet */
  snprintf(p, sizeof p, "%s/vmlinuz", dir);
  fd = open(p, O_WRONLY | O_CREAT, 0644);
  close(fd);
  CHECK_EQ(cfg(&o, &c), -ENOENT); /* no initrd.img yet */
  snprintf(p, sizeof p, "%s/initrd.img", dir);
  fd = open(p, O_WRONLY | O_CREAT, 0644);
  close(fd);
  CHECK_EQ(cfg(&o, &c), 0);
  CHECK_STR(c.initrd, p);
  hcsb__uvm_cfg_free(&c);
  /* kernel and initrd override the directory's. */
  o.initrd = initrd;
  CHECK_EQ(cfg(&o, &c), 0);
  CHECK_STR(c.initrd, initrd);
  hcsb__uvm_cfg_free(&c);
}

static void test_uvm_options_refused(void) {
  hcsb_uvm_options_t o;
  hcsb__uvm_cfg_t c;
  hcsb_uvm_file_t f;

  setup();
  CHECK_EQ(hcsb__uvm_cfg_init(&c, NULL, NULL, 0), -EINVAL);
#define REFUSE(rc, change)     \
  do {                         \
    opts_ok(&o);               \
    change;                    \
    CHECK_EQ(cfg(&o, &c), rc); \
  } while (0)
  REFUSE(-EINVAL, o.kernel = NULL);
  REFUSE(-EINVAL, o.initrd = NULL);
  REFUSE(-ENOENT, o.kernel = "/nonexistent/vmlinuz");
  REFUSE(-EINVAL, o.initrd = "/");
  REFUSE(-EINVAL, o.accel = "xen");
  REFUSE(-EINVAL, o.memory_mb = 32);
  REFUSE(-EINVAL, o.memory_mb = 70000);
  REFUSE(-EINVAL, o.cpus = 65);
  REFUSE(-EINVAL, o.vpmem_slots = 33);
  REFUSE(-EINVAL, o.vpmem_max_mb = 7);
  REFUSE(-EINVAL, o.vpmem_wait = (hcsb_uvm_vpmem_wait_t)7);
  REFUSE(-EINVAL, o.guest_cmd = "");
  REFUSE(-EINVAL, o.guest_cmd = "a\nb");
  REFUSE(-ENOENT, o.qemu = "no-such-qemu-anywhere");
  REFUSE(-ENOENT, o.vsockd = "/nonexistent/hcsb-vsockd");
  REFUSE(-EINVAL, o.nguest_files = 1);
  REFUSE(-EINVAL, o.nqemu_args = 1);
  f.src = NULL;
  f.dest = NULL;
  REFUSE(-EINVAL, (o.guest_files = &f, o.nguest_files = 1));
  f.src = "/nonexistent/file";
  REFUSE(-ENOENT, (o.guest_files = &f, o.nguest_files = 1));
  f.src = data;
  const char *bad_dest[] = {"relative", "/",      "/a/../b",
                            "/a//b",    "/a/./b", "/a/"};
  for (size_t i = 0; i < sizeof bad_dest / sizeof bad_dest[0]; i++) {
    f.dest = bad_dest[i];
    REFUSE(-EINVAL, (o.guest_files = &f, o.nguest_files = 1));
  }
#undef REFUSE
  /* hcsb_uvm_start refuses the same, and a run directory whose socket
   * paths would not fit sockaddr_un. */
  {
    uv_loop_t loop;
    hcsb_uvm_t *u = (hcsb_uvm_t *)&loop; /* untouched on failure */
    char longdir[200];
    CHECK_EQ(uv_loop_init(&loop), 0);
    opts_ok(&o);
    o.accel = "xen";
    CHECK_EQ(hcsb_uvm_start(&loop, &o, NULL, NULL, &u), -EINVAL);
    CHECK(u == (hcsb_uvm_t *)&loop);
    opts_ok(&o);
    memset(longdir, 'x', sizeof longdir);
    longdir[0] = '/';
    longdir[sizeof longdir - 1] = '\0';
    o.run_dir = longdir;
    CHECK_EQ(hcsb_uvm_start(&loop, &o, NULL, NULL, &u), -ENAMETOOLONG);
    CHECK_EQ(hcsb_uvm_start(NULL, &o, NULL, NULL, &u), -EINVAL);
    CHECK_EQ(uv_loop_close(&loop), 0);
  }
}

static void test_uvm_options_guest_files(void) {
  hcsb_uvm_options_t o;
  hcsb__uvm_cfg_t c;
  hcsb_uvm_file_t f[3] = {{exe, NULL}, {data, NULL}, {data, "/etc/x/y.conf"}};

  setup();
  opts_ok(&o);
  o.guest_files = f;
  o.nguest_files = 3;
  CHECK_EQ(cfg(&o, &c), 0);
  CHECK(hcsb__uvm_cfg_overrides(&c));
  CHECK_STR(c.files[0].dest, "/bin/prog");
  CHECK_EQ(c.files[0].mode, 0100755);
  CHECK_STR(c.files[1].dest, "/notes.txt");
  CHECK_EQ(c.files[1].mode, 0100644);
  CHECK_STR(c.files[2].dest, "/etc/x/y.conf");
  CHECK_EQ(c.files[2].size, 5);
  hcsb__uvm_cfg_free(&c);
}

static int argv_has(const hcsb__argv_t *a, const char *s) {
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->v[i], s) == 0) return (int)i;
  return -1;
}

static void test_uvm_qemu_command_line(void) {
  const char *extra[] = {"-device", "nvdimm,memdev=x"};
  hcsb_uvm_options_t o;
  hcsb__uvm_cfg_t c;
  hcsb__argv_t a;
  int i, ports = 0;

  setup();
  opts_ok(&o);
  o.memory_mb = 512;
  o.cpus = 2;
  o.vpmem_slots = 3;
  o.vpmem_max_mb = 1024;
  o.kernel_args = "loglevel=7";
  o.qemu_args = extra;
  o.nqemu_args = 2;
  o.accel = "kvm";
  CHECK_EQ(cfg(&o, &c), 0);
  CHECK_EQ(hcsb__uvm_qemu_argv(&c, "/run/a,b", "/run/a,b/initrd.img", 4242, &a),
           0);
  CHECK(strstr(a.v[0], "hcsb-uvm-exec") != NULL);
  CHECK_STR(a.v[1], "4242");
  CHECK(strstr(a.v[2], "qemu-fake") != NULL);
  CHECK(a.v[a.n] == NULL);
  i = argv_has(&a, "-accel");
  CHECK(i > 0);
  CHECK_STR(a.v[i + 1], "kvm");
  i = argv_has(&a, "-m");
  CHECK_STR(a.v[i + 1], "512M,maxmem=1536M");
  i = argv_has(&a, "-smp");
  CHECK_STR(a.v[i + 1], "2");
  CHECK(argv_has(&a, "socket,id=qmp,fd=3") > 0);
  CHECK(argv_has(&a, "socket,id=con,fd=4") > 0);
  CHECK(argv_has(&a, "memory-backend-memfd,id=mem,size=512M,share=on") > 0);
  CHECK(argv_has(&a, "none") > 0); /* -nic none */
  for (size_t k = 0; k < a.n; k++)
    if (strncmp(a.v[k], "pcie-root-port,", 15) == 0) ports++;
  CHECK_EQ(ports, 3);
  CHECK(argv_has(&a, "pcie-root-port,id=rp3,bus=pcie.0,chassis=3,slot=3") > 0);
  /* A comma in the run directory is doubled for QEMU's option parser. */
  CHECK(argv_has(&a, "socket,id=vsk,path=/run/a,,b/vhost.sock") > 0);
  i = argv_has(&a, "-initrd");
  CHECK_STR(a.v[i + 1], "/run/a,b/initrd.img");
  i = argv_has(&a, "-append");
  CHECK_STR(a.v[i + 1], "console=ttyS0 panic=-1 quiet loglevel=7");
  CHECK_STR(a.v[a.n - 2], "-device");
  CHECK_STR(a.v[a.n - 1], "nvdimm,memdev=x");
  hcsb__argv_free(&a);
  CHECK_EQ(hcsb__uvm_vsockd_argv(&c, "/run/x", 7, &a), 0);
  CHECK(strstr(a.v[2], "/hcsb-vsockd") != NULL);
  i = argv_has(&a, "--socket");
  CHECK_STR(a.v[i + 1], "/run/x/vhost.sock");
  i = argv_has(&a, "--uds-path");
  CHECK_STR(a.v[i + 1], "/run/x/vsock");
  i = argv_has(&a, "--ready-fd");
  CHECK_STR(a.v[i + 1], "3");
  hcsb__argv_free(&a);
  hcsb__uvm_cfg_free(&c);
}

static void test_uvm_cpio_entry(void) {
  char buf[256];
  size_t n;

  n = hcsb__cpio_entry(buf, sizeof buf, "etc/uvm/guest-cmd", 0100644, 19, 7, 0);
  /* 110 + 18 (name and NUL) = 128: already aligned. */
  CHECK_EQ(n, 128);
  CHECK_EQ(hcsb__cpio_entry_len("etc/uvm/guest-cmd"), 128);
  CHECK_MEM(buf,
            "070701"
            "00000007"
            "000081A4"
            "00000000"
            "00000000"
            "00000001"
            "00000000"
            "00000013"
            "00000000"
            "00000000"
            "00000000"
            "00000000"
            "00000012"
            "00000000",
            110);
  CHECK_MEM(buf + 110, "etc/uvm/guest-cmd\0", 18);
  n = hcsb__cpio_entry(buf, sizeof buf, "bin", 040755, 0, 1, 0);
  CHECK_EQ(n, 116);                   /* 110 + 4, padded to 116 */
  CHECK_MEM(buf + 38, "00000002", 8); /* directories: nlink 2 */
  CHECK(buf[114] == 0 && buf[115] == 0);
  CHECK_EQ(hcsb__cpio_pad(5), 3);
  CHECK_EQ(hcsb__cpio_pad(8), 0);
  n = hcsb__cpio_trailer(buf, sizeof buf);
  CHECK_EQ(n, 124);
  CHECK_MEM(buf + 110, "TRAILER!!!\0", 11);
  CHECK_EQ(hcsb__cpio_entry(buf, 100, "x", 0100644, 0, 1, 0), 0);
  CHECK_EQ(hcsb__cpio_entry(buf, sizeof buf, "", 0100644, 0, 1, 0), 0);
  CHECK_EQ(hcsb__cpio_entry(buf, sizeof buf, "x", 0100644, 1ull << 32, 1, 0),
           0);
  CHECK_EQ(hcsb__cpio_check_path("/etc/uvm/guest-cmd"), 0);
  CHECK_EQ(hcsb__cpio_check_path("/a"), 0);
  CHECK_EQ(hcsb__cpio_check_path("/..a/b.c"), 0);
  CHECK_EQ(hcsb__cpio_check_path("/a/.."), -EINVAL);
  CHECK_EQ(hcsb__cpio_check_path(NULL), -EINVAL);
}

/* Reads the newc archive at `p` (from the base's end on): each entry's
 * name, mode and data must be what the writer was given. */
typedef struct ent_s {
  char name[64];
  unsigned mode, size;
  const char *data;
} ent_t;

static unsigned hex8(const char *p) {
  char b[9];
  memcpy(b, p, 8);
  b[8] = '\0';
  return (unsigned)strtoul(b, NULL, 16);
}

static size_t parse(const char *p, size_t len, ent_t *e, size_t max) {
  size_t off = 0, n = 0;
  while (off + 110 <= len && n < max) {
    unsigned namesize, size;
    CHECK_MEM(p + off, "070701", 6);
    e[n].mode = hex8(p + off + 14);
    size = hex8(p + off + 54);
    namesize = hex8(p + off + 94);
    CHECK(namesize < sizeof e[n].name);
    memcpy(e[n].name, p + off + 110, namesize);
    off += 110 + namesize;
    off += hcsb__cpio_pad(off);
    e[n].size = size;
    e[n].data = p + off;
    off += size;
    off += hcsb__cpio_pad(off);
    if (strcmp(e[n].name, "TRAILER!!!") == 0) return n;
    n++;
  }
  hcsb_test_fail(__FILE__, __LINE__, "no trailer");
}

static void test_uvm_initrd_archive(void) {
  hcsb_uvm_options_t o;
  hcsb__uvm_cfg_t c;
  hcsb__initrd_job_t job;
  hcsb_uvm_file_t f[2] = {{exe, "/usr/libexec/gcs/prog"}, {data, "/tmp/n"}};
  ent_t e[16];
  size_t len, n;
  uint8_t *img;

  setup();
  opts_ok(&o);
  o.guest_cmd = "/usr/libexec/gcs/prog -v";
  o.guest_files = f;
  o.nguest_files = 2;
  CHECK_EQ(cfg(&o, &c), 0);
  memset(&job, 0, sizeof job);
  job.cfg = &c;
  snprintf(job.out, sizeof job.out, "%s/out.img", hcsb_test_tmpdir());
  hcsb__initrd_build(&job);
  CHECK_EQ(job.status, 0);
  img = hcsb_test_read_file(job.out, &len);
  /* The base's 5 bytes, 3 zeros, then the archive. */
  CHECK_MEM(img, "abcde\0\0\0", 8);
  n = parse((const char *)img + 8, len - 8, e, 16);
  CHECK_EQ(n, 9);
  CHECK_STR(e[0].name, "etc");
  CHECK_EQ(e[0].mode, 040755);
  CHECK_STR(e[1].name, "etc/uvm");
  CHECK_STR(e[2].name, "etc/uvm/guest-cmd");
  CHECK_EQ(e[2].mode, 0100644);
  CHECK_EQ(e[2].size, 25);
  CHECK_MEM(e[2].data, "/usr/libexec/gcs/prog -v\n", 25);
  CHECK_STR(e[3].name, "usr");
  CHECK_STR(e[4].name, "usr/libexec");
  CHECK_STR(e[5].name, "usr/libexec/gcs");
  CHECK_STR(e[6].name, "usr/libexec/gcs/prog");
  CHECK_EQ(e[6].mode, 0100755);
  CHECK_EQ(e[6].size, 5);
  CHECK_MEM(e[6].data, "abcde", 5);
  CHECK_STR(e[7].name, "tmp");
  CHECK_EQ(e[7].mode, 041777); /* a later archive sets a directory's mode */
  CHECK_STR(e[8].name, "tmp/n");
  CHECK_EQ(e[8].mode, 0100644);
  free(img);
  /* The output is never overwritten: one per run directory. */
  hcsb__initrd_build(&job);
  CHECK_EQ(job.status, -EEXIST);
  CHECK(strstr(job.why, "out.img") != NULL);
  hcsb__uvm_cfg_free(&c);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(uvm_options_defaults),  TEST_ENTRY(uvm_options_image_dir),
    TEST_ENTRY(uvm_options_refused),   TEST_ENTRY(uvm_options_guest_files),
    TEST_ENTRY(uvm_qemu_command_line), TEST_ENTRY(uvm_cpio_entry),
    TEST_ENTRY(uvm_initrd_archive),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
