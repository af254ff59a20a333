/* hcsb-guest's acting backend (src/guest/act*.c) on the host, without
 * privileges and without a VM: the device-mapper tables and names, the
 * overlay and VPMem mount options, the OCI spec as runc gets it, runc's
 * command lines, its JSON log and pid files, the console socket's fd
 * passing, the argument checks, and the helper-command runner (jobs) with
 * the orphan-exit bookkeeping.  Nothing here mounts, loads a table or runs
 * runc: what acts is tested in a VM (test/test-vm-guest.c). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/act.h"
#include "runner.h"

/* main.c's logger, which this test does not link. */
void hcsb__glog(hcsb__guest_t *g, int verbose_only, const char *fmt, ...) {
  (void)g;
  (void)verbose_only;
  (void)fmt;
}

/* ------------------------------------------------------------------------ */
/* device-mapper */

static void test_dm_linear(void) {
  char t[256];
  uint64_t sectors = 0;

  CHECK_EQ(hcsb__gdm_linear_table(t, sizeof t, "/dev/pmem1", 4194304, 8388608,
                                  &sectors),
           0);
  CHECK_STR(t, "0 16384 linear /dev/pmem1 8192");
  CHECK_EQ(sectors, 16384);
  CHECK_EQ(hcsb__gdm_linear_table(t, sizeof t, "/dev/pmem0", 0, 512, &sectors),
           0);
  CHECK_STR(t, "0 1 linear /dev/pmem0 0");
  /* Not sector multiples, empty, a device that would split the table. */
  CHECK_EQ(
      hcsb__gdm_linear_table(t, sizeof t, "/dev/pmem0", 100, 4096, &sectors),
      -EINVAL);
  CHECK_EQ(hcsb__gdm_linear_table(t, sizeof t, "/dev/pmem0", 0, 1000, &sectors),
           -EINVAL);
  CHECK_EQ(hcsb__gdm_linear_table(t, sizeof t, "/dev/pmem0", 0, 0, &sectors),
           -EINVAL);
  CHECK_EQ(hcsb__gdm_linear_table(t, sizeof t, "/dev/a b", 0, 512, &sectors),
           -EINVAL);
  CHECK_EQ(hcsb__gdm_linear_table(t, sizeof t, "pmem0", 0, 512, &sectors),
           -EINVAL);
  CHECK_EQ(hcsb__gdm_linear_table(t, 8, "/dev/pmem0", 0, 512, &sectors),
           -ENOSPC);
}

static void test_dm_verity(void) {
  hcsb__gverity_t v = {8388608, 4096, 1, "sha256", "ab12", "cd34", 1};
  char t[512];
  uint64_t sectors = 0;

  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem2", &v, &sectors), 0);
  /* 2048 data blocks; the tree one block (the superblock) after them. */
  CHECK_STR(t, "1 /dev/pmem2 /dev/pmem2 4096 4096 2048 2049 sha256 ab12 cd34");
  CHECK_EQ(sectors, 16384);
  v.superblock = 0;
  v.salt = "";
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/mapper/x", &v, &sectors),
           0);
  CHECK_STR(t,
            "1 /dev/mapper/x /dev/mapper/x 4096 4096 2048 2048 sha256 ab12 -");
  v.version = 0;
  v.block = 512;
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors), 0);
  CHECK_STR(t, "0 /dev/pmem0 /dev/pmem0 512 512 16384 16384 sha256 ab12 -");

  /* What the kernel cannot take, refused before a table is loaded. */
  v.version = 1;
  v.block = 0; /* the v0.11.8 GCS divides by it */
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
  v.block = 3000;
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
  v.block = 131072;
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
  v.block = 4096;
  v.data_bytes = 4096 * 3 + 512; /* not whole blocks */
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
  v.data_bytes = 8388608;
  v.root = "xyz";
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
  v.root = "";
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
  v.root = "ab12";
  v.salt = "zz";
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
  v.salt = "";
  v.alg = "sha 256";
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
  v.alg = "sha256";
  v.version = 2;
  CHECK_EQ(hcsb__gdm_verity_params(t, sizeof t, "/dev/pmem0", &v, &sectors),
           -EINVAL);
}

static void test_dm_names(void) {
  char n[160], root[200];

  CHECK_EQ(hcsb__gdm_linear_name(n, sizeof n, 3, 4194304, 8388608), 0);
  CHECK_STR(n, "dm-linear-pmem3-4194304-8388608");
  CHECK_EQ(hcsb__gdm_verity_name(n, sizeof n, 0, "0a1b"), 0);
  CHECK_STR(n, "dm-verity-pmem0-0a1b");
  /* A sha512 digest (128 hex digits) still fits in DM_NAME_LEN. */
  memset(root, 'f', 128);
  root[128] = '\0';
  CHECK_EQ(hcsb__gdm_verity_name(n, sizeof n, 0, root), -ENAMETOOLONG);
  root[96] = '\0';
  CHECK_EQ(hcsb__gdm_verity_name(n, sizeof n, 0, root), 0);
  CHECK_EQ(strlen(n), strlen("dm-verity-pmem0-") + 96);
  /* A digest must not carry a path into the name. */
  CHECK_EQ(hcsb__gdm_verity_name(n, sizeof n, 0, "../x"), -EINVAL);
  CHECK_EQ(hcsb__gdm_verity_name(n, sizeof n, 0, ""), -EINVAL);
  CHECK_EQ(hcsb__gdm_linear_name(n, 10, 3, 0, 512), -ENAMETOOLONG);
}

/* ------------------------------------------------------------------------ */
/* Mount options */

static void test_overlay_data(void) {
  const char *one[] = {"/run/layers/p0"};
  const char *two[] = {"/run/layers/p1", "/run/layers/p0"};
  const char *bad[] = {"/run/layers/p0", "/a:b"};
  const char *comma[] = {"/run/a,upperdir=/x"};
  const char *rel[] = {"run/layers/p0"};
  const char *dots[] = {"/run/../etc"};
  char d[4096], big[5000];
  const char *many[HCSB__GA_MAX_LAYERS + 1];
  size_t i;

  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, one, 1, NULL, NULL), 0);
  CHECK_STR(d, "lowerdir=/run/layers/p0");
  /* The GCS's order: as given, the first on top. */
  CHECK_EQ(
      hcsb__goverlay_data(d, sizeof d, two, 2, "/run/s/upper", "/run/s/work"),
      0);
  CHECK_STR(d,
            "lowerdir=/run/layers/p1:/run/layers/p0,upperdir=/run/s/upper,"
            "workdir=/run/s/work");
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, one, 0, NULL, NULL), -EINVAL);
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, bad, 2, NULL, NULL), -EINVAL);
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, comma, 1, NULL, NULL), -EINVAL);
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, rel, 1, NULL, NULL), -EINVAL);
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, dots, 1, NULL, NULL), -EINVAL);
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, one, 1, "/run/s/upper", NULL),
           -EINVAL);
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, one, 1, "/u:x", "/w"), -EINVAL);
  for (i = 0; i <= HCSB__GA_MAX_LAYERS; i++) many[i] = "/l";
  CHECK_EQ(
      hcsb__goverlay_data(d, sizeof d, many, HCSB__GA_MAX_LAYERS, NULL, NULL),
      0);
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, many, HCSB__GA_MAX_LAYERS + 1, NULL,
                               NULL),
           -E2BIG);
  /* More than a page of options never reaches mount(2). */
  memset(big, 'a', sizeof big - 1);
  big[0] = '/';
  big[4000] = '\0';
  many[0] = big;
  many[1] = big;
  CHECK_EQ(hcsb__goverlay_data(d, sizeof d, many, 2, NULL, NULL), -E2BIG);
  CHECK_EQ(hcsb__goverlay_data(d, 16, one, 1, NULL, NULL), -E2BIG);
  /* VPMem: ext4, read-only (the flag), no journal replay. */
  CHECK_STR(HCSB__GA_PMEM_FSTYPE, "ext4");
  CHECK_STR(HCSB__GA_PMEM_DATA, "noload");
}

static void test_path_checks(void) {
  CHECK(hcsb__ga_path_ok("/run/layers/p0"));
  CHECK(!hcsb__ga_path_ok("/"));
  CHECK(!hcsb__ga_path_ok("//"));
  CHECK(hcsb__ga_path_ok("/a//b/"));
  CHECK(hcsb__ga_path_ok("/a/..b/c."));
  CHECK(!hcsb__ga_path_ok("run/layers"));
  CHECK(!hcsb__ga_path_ok(""));
  CHECK(!hcsb__ga_path_ok(NULL));
  CHECK(!hcsb__ga_path_ok("/run/../etc"));
  CHECK(!hcsb__ga_path_ok("/run/./x"));
  CHECK(!hcsb__ga_path_ok("/run/.."));
  CHECK(!hcsb__ga_path_ok("/a\nb"));
  {
    char long_path[5000];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    CHECK(!hcsb__ga_path_ok(long_path));
  }
  /* Bundles and scratches are removed recursively: only below /run or
   * /tmp. */
  CHECK(hcsb__ga_state_path_ok("/run/gcs/c/c1"));
  CHECK(hcsb__ga_state_path_ok("/tmp/s"));
  CHECK(hcsb__ga_state_path_ok("/run/mounts/m0/scratch"));
  CHECK(!hcsb__ga_state_path_ok("/run"));
  CHECK(!hcsb__ga_state_path_ok("/run/"));
  CHECK(!hcsb__ga_state_path_ok("/tmp"));
  CHECK(!hcsb__ga_state_path_ok("/"));
  CHECK(!hcsb__ga_state_path_ok("/bin/x"));
  CHECK(!hcsb__ga_state_path_ok("/runx/a"));
  CHECK(!hcsb__ga_state_path_ok("/ru/a"));
  CHECK(!hcsb__ga_state_path_ok("/run/../bin"));
  CHECK(!hcsb__ga_state_path_ok("run/x"));
  CHECK(hcsb__grunc_id_ok("c1"));
  CHECK(hcsb__grunc_id_ok("a.B_c+d-9"));
  CHECK(!hcsb__grunc_id_ok(""));
  CHECK(!hcsb__grunc_id_ok("."));
  CHECK(!hcsb__grunc_id_ok(".."));
  CHECK(!hcsb__grunc_id_ok("a/b"));
  CHECK(!hcsb__grunc_id_ok("a b"));
  CHECK(!hcsb__grunc_id_ok("-c1")); /* runc would take it for a flag */
  CHECK(!hcsb__grunc_id_ok(NULL));
  /* The emulator's rule is the same without the flag check. */
  CHECK(hcsb__gctr_id_ok("-c1"));
  CHECK(!hcsb__gctr_id_ok("a/b"));
  {
    char id[257];
    memset(id, 'a', sizeof id - 1);
    id[256] = '\0';
    CHECK(!hcsb__gctr_id_ok(id)); /* 256: too long */
    id[255] = '\0';
    CHECK(hcsb__gctr_id_ok(id));
    CHECK(hcsb__grunc_id_ok(id));
  }
}

static void test_fs_helpers(void) {
  char top[1024], path[1200], err[256];
  char *j;
  int made = -1;
  FILE *f;

  j = hcsb__ga_path_join("/a", "b");
  CHECK_STR(j, "/a/b");
  free(j);
  snprintf(top, sizeof top, "%s/t", hcsb_test_tmpdir());
  snprintf(path, sizeof path, "%s/x/y/z", top);
  CHECK_EQ(hcsb__ga_mkdir_p(path, 0700, &made), 0);
  CHECK_EQ(made, 1);
  CHECK_EQ(hcsb__ga_mkdir_p(path, 0700, &made), 0);
  CHECK_EQ(made, 0); /* there already: a failure later must not remove it */
  snprintf(path, sizeof path, "%s/x/file", top);
  f = fopen(path, "w");
  CHECK(f != NULL);
  fclose(f);
  snprintf(path, sizeof path, "%s/x/link", top);
  CHECK_EQ(symlink("/", path), 0); /* removed, never followed */
  snprintf(path, sizeof path, "%s/x/file/sub", top);
  CHECK_EQ(hcsb__ga_mkdir_p(path, 0700, &made), -ENOTDIR);
  CHECK_EQ(hcsb__ga_rm_tree(top, err, sizeof err), 0);
  CHECK_STR(err, "");
  CHECK(access(top, F_OK) < 0 && errno == ENOENT);
  CHECK_EQ(hcsb__ga_rm_tree(top, err, sizeof err), 0); /* gone: fine */
  /* Nothing below this test's directory is mounted; the root is. */
  CHECK(!hcsb__ga_mounted_under(hcsb_test_tmpdir()));
  CHECK(hcsb__ga_mounted_at("/"));
  CHECK(hcsb__ga_mounted_under("/proc/"));
}

/* ------------------------------------------------------------------------ */
/* The spec */

static json_object *parse(const char *text) {
  json_object *o = NULL;
  CHECK_EQ(hcsb__json_parse(text, strlen(text), &o), 0);
  return o;
}

static const char *compact(json_object *o) {
  return json_object_to_json_string_ext(
      o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void test_spec_adapt(void) {
  json_object *s = parse(
      "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"rootfs\"},"
      "\"hostname\":\"h\",\"mounts\":[{\"destination\":\"/proc\","
      "\"type\":\"proc\",\"source\":\"proc\"}],\"linux\":{\"cgroupsPath\":"
      "\"/elsewhere\",\"namespaces\":[{\"type\":\"pid\"}]},"
      "\"windows\":{\"network\":{}}}");
  unsigned files = 0;

  CHECK_EQ(hcsb__gspec_adapt(s, "c1", "/run/gcs/c/c1", &files), 0);
  CHECK_EQ(files,
           HCSB__GSPEC_HOSTNAME | HCSB__GSPEC_HOSTS | HCSB__GSPEC_RESOLV);
  CHECK_STR(compact(s),
            "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"rootfs\"},"
            "\"hostname\":\"h\",\"mounts\":[{\"destination\":\"/proc\","
            "\"type\":\"proc\",\"source\":\"proc\"},"
            "{\"destination\":\"/etc/hostname\",\"type\":\"bind\","
            "\"source\":\"/run/gcs/c/c1/hostname\",\"options\":[\"bind\"]},"
            "{\"destination\":\"/etc/hosts\",\"type\":\"bind\","
            "\"source\":\"/run/gcs/c/c1/hosts\",\"options\":[\"bind\"]},"
            "{\"destination\":\"/etc/resolv.conf\",\"type\":\"bind\","
            "\"source\":\"/run/gcs/c/c1/resolv.conf\",\"options\":[\"bind\"]}],"
            "\"linux\":{\"cgroupsPath\":\"/containers/c1\",\"namespaces\":"
            "[{\"type\":\"pid\"}]}}");
  json_object_put(s);

  /* The spec's own /etc/hosts stays; a read-only root makes them "ro";
   * no mounts and no linux section are fine. */
  s = parse(
      "{\"root\":{\"path\":\"/r\",\"readonly\":true},\"mounts\":"
      "[{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":"
      "\"/x\"}]}");
  CHECK_EQ(hcsb__gspec_adapt(s, "c2", "/run/gcs/c/c2", &files), 0);
  CHECK_EQ(files, HCSB__GSPEC_HOSTNAME | HCSB__GSPEC_RESOLV);
  CHECK(strstr(compact(s),
               "{\"destination\":\"/etc/hostname\",\"type\":\"bind\","
               "\"source\":\"/run/gcs/c/c2/hostname\",\"options\":[\"bind\","
               "\"ro\"]}") != NULL);
  CHECK(strstr(compact(s), "\"source\":\"/run/gcs/c/c2/hosts\"") == NULL);
  CHECK(strstr(compact(s), "\"linux\":{\"cgroupsPath\":\"/containers/c2\"}") !=
        NULL);
  json_object_put(s);

  s = parse("{}");
  CHECK_EQ(hcsb__gspec_adapt(s, "c3", "/r", &files), 0);
  CHECK_EQ(files, 7);
  json_object_put(s);

  /* Wrong types are the caller's 0xC037010D. */
  s = parse("{\"mounts\":{}}");
  CHECK_EQ(hcsb__gspec_adapt(s, "c4", "/r", &files), -EINVAL);
  json_object_put(s);
  s = parse("{\"linux\":[]}");
  CHECK_EQ(hcsb__gspec_adapt(s, "c4", "/r", &files), -EINVAL);
  json_object_put(s);
  s = parse("[]");
  CHECK_EQ(hcsb__gspec_adapt(s, "c4", "/r", &files), -EINVAL);
  json_object_put(s);
}

static void test_spec_files(void) {
  json_object *s;
  char host[256], root[256], *t;

  t = hcsb__gspec_hostname_text("web");
  CHECK_STR(t, "web\n");
  free(t);
  t = hcsb__gspec_hosts_text("web");
  {
    static const char head[] =
        "127.0.0.1 localhost\n127.0.0.1 web\n\n# The following";
    CHECK(strncmp(t, head, strlen(head)) == 0);
  }
  CHECK(strstr(t, "::1     ip6-localhost ip6-loopback\n") != NULL);
  free(t);
  t = hcsb__gspec_hosts_text("web.example.org");
  CHECK(strstr(t, "127.0.0.1 web.example.org web\n") != NULL);
  free(t);

  s = parse("{\"hostname\":\"given\",\"root\":{\"path\":\"rootfs\"}}");
  CHECK_EQ(hcsb__gspec_hostname(s, host, sizeof host), 0);
  CHECK_STR(host, "given");
  CHECK_EQ(hcsb__gspec_rootfs(s, "/run/gcs/c/c1", root, sizeof root), 0);
  CHECK_STR(root, "/run/gcs/c/c1/rootfs");
  json_object_put(s);
  s = parse("{\"hostname\":\"\",\"root\":{\"path\":\"/abs/root\"}}");
  CHECK_EQ(hcsb__gspec_hostname(s, host, sizeof host), 0);
  CHECK(host[0] != '\0'); /* this machine's name */
  CHECK_EQ(hcsb__gspec_rootfs(s, "/b", root, sizeof root), 0);
  CHECK_STR(root, "/abs/root");
  CHECK_EQ(hcsb__gspec_rootfs(s, "/b", root, 4), -ENAMETOOLONG);
  json_object_put(s);
  s = parse("{\"root\":{}}");
  CHECK_EQ(hcsb__gspec_rootfs(s, "/b", root, sizeof root), -EINVAL);
  json_object_put(s);
}

static void test_spec_exec_process(void) {
  json_object *spec = parse(
      "{\"process\":{\"user\":{\"uid\":5,\"gid\":5,\"username\":\"svc\"},"
      "\"rlimits\":[{\"type\":\"RLIMIT_CORE\",\"hard\":1,\"soft\":1}]}}");
  json_object *proc = parse(
      "{\"args\":[\"ls\"],\"cwd\":\"/\","
      "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\"}]}");
  json_object *p = hcsb__gspec_exec_process(proc, spec);

  CHECK(p != NULL);
  CHECK_STR(compact(p),
            "{\"args\":[\"ls\"],\"cwd\":\"/\",\"rlimits\":[{\"type\":"
            "\"RLIMIT_CORE\",\"hard\":1,\"soft\":1}],\"user\":{\"uid\":5,"
            "\"gid\":5,\"username\":\"svc\"}}");
  /* The host's object is not touched. */
  CHECK(strstr(compact(proc), "RLIMIT_NOFILE") != NULL);
  json_object_put(p);
  json_object_put(proc);
  /* An exec naming its own user keeps it; a spec without rlimits drops the
   * exec's (the GCS assigns the container's, nil included). */
  proc = parse(
      "{\"args\":[\"id\"],\"user\":{\"uid\":0,\"username\":\"me\"},"
      "\"rlimits\":[]}");
  json_object_put(spec);
  spec = parse("{\"process\":{\"user\":{\"uid\":5,\"username\":\"svc\"}}}");
  p = hcsb__gspec_exec_process(proc, spec);
  CHECK_STR(compact(p),
            "{\"args\":[\"id\"],\"user\":{\"uid\":0,\"username\":"
            "\"me\"}}");
  json_object_put(p);
  json_object_put(proc);
  json_object_put(spec);
}

static void test_spec_write(void) {
  char path[1024], buf[64];
  int fd;
  ssize_t n;

  snprintf(path, sizeof path, "%s/f", hcsb_test_tmpdir());
  CHECK_EQ(hcsb__gspec_write(path, "one\n", 4), 0);
  CHECK_EQ(hcsb__gspec_write(path, "x", 1), 0); /* replaced, not appended */
  fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  n = read(fd, buf, sizeof buf);
  close(fd);
  CHECK_EQ(n, 1);
  CHECK_EQ(buf[0], 'x');
  snprintf(path, sizeof path, "%s/no/such/dir/f", hcsb_test_tmpdir());
  CHECK_EQ(hcsb__gspec_write(path, "x", 1), -ENOENT);
}

/* ------------------------------------------------------------------------ */
/* runc */

static char *joined(const char *const *argv) {
  static char buf[1024];
  size_t n = 0;

  buf[0] = '\0';
  for (; *argv != NULL; argv++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? " " : "", *argv);
  return buf;
}

static void test_runc_argv(void) {
  const char *argv[HCSB__GRUNC_MAX_ARGS];
  hcsb__grunc_cmd_t c;
  char num[16];

  memset(&c, 0, sizeof c);
  c.op = HCSB__GRUNC_CREATE;
  c.runc = "/bin/runc";
  c.log = "/run/hcsb-guest/c1/runc.log";
  c.id = "c1";
  c.bundle = "/run/gcs/c/c1";
  c.pid_file = "/run/hcsb-guest/c1/init.pid";
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), 0);
  CHECK_STR(joined(argv),
            "/bin/runc --log /run/hcsb-guest/c1/runc.log --log-format json "
            "create -b /run/gcs/c/c1 --no-pivot --pid-file "
            "/run/hcsb-guest/c1/init.pid c1");
  c.console = "/run/hcsb-guest/con-1.sock";
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), 0);
  CHECK(strstr(joined(argv),
               "--pid-file /run/hcsb-guest/c1/init.pid --console-socket "
               "/run/hcsb-guest/con-1.sock c1") != NULL);

  c.op = HCSB__GRUNC_EXEC;
  c.process = "/p.json";
  c.pid_file = "/e.pid";
  c.console = NULL;
  c.log = NULL;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), 0);
  CHECK_STR(joined(argv),
            "/bin/runc exec -d --process /p.json --pid-file /e.pid c1");

  c.op = HCSB__GRUNC_START;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), 0);
  CHECK_STR(joined(argv), "/bin/runc start c1");

  c.op = HCSB__GRUNC_KILL;
  c.sig = 15;
  c.all = 1;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), 0);
  CHECK_STR(joined(argv), "/bin/runc kill --all c1 15");
  c.sig = 10;
  c.all = 0;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), 0);
  CHECK_STR(joined(argv), "/bin/runc kill c1 10");
  c.sig = 0;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), -EINVAL);
  c.sig = 65;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), -EINVAL);

  c.op = HCSB__GRUNC_DELETE;
  c.force = 1;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), 0);
  CHECK_STR(joined(argv), "/bin/runc delete --force c1");

  c.op = HCSB__GRUNC_UPDATE;
  c.process = "/r.json";
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), 0);
  CHECK_STR(joined(argv), "/bin/runc update --resources /r.json c1");

  /* What runc would misread is refused. */
  c.id = "--all";
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), -EINVAL);
  c.id = "c1";
  c.op = HCSB__GRUNC_CREATE;
  c.bundle = NULL;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), -EINVAL);
  c.op = HCSB__GRUNC_EXEC;
  c.process = NULL;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), -EINVAL);
  c.op = 99;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), -EINVAL);
  c.op = HCSB__GRUNC_START;
  c.runc = NULL;
  CHECK_EQ(hcsb__grunc_argv(&c, num, argv), -EINVAL);
}

static void put(const char *path, const char *text) {
  CHECK_EQ(hcsb__gspec_write(path, text, strlen(text)), 0);
}

static void test_runc_log(void) {
  char path[1024], out[256];

  snprintf(path, sizeof path, "%s/runc.log", hcsb_test_tmpdir());
  CHECK_EQ(hcsb__grunc_log_error(path, out, sizeof out), -ENOENT);
  put(path,
      "{\"level\":\"info\",\"msg\":\"starting\",\"time\":\"t\"}\n"
      "not json at all\n"
      "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n"
      "{\"level\":\"error\",\"msg\":\"runc create failed: unable to start "
      "container process: exec: \\\"/x\\\": stat /x: no such file or "
      "directory\",\"time\":\"t\"}\n"
      "{\"level\":\"warning\",\"msg\":\"later warning\"}\n");
  CHECK_EQ(hcsb__grunc_log_error(path, out, sizeof out), 0);
  CHECK_STR(out,
            "runc create failed: unable to start container process: "
            "exec: \"/x\": stat /x: no such file or directory");
  put(path, "{\"level\":\"fatal\",\"msg\":\"m\",\"error\":\"e\"}\n");
  CHECK_EQ(hcsb__grunc_log_error(path, out, sizeof out), 0);
  CHECK_STR(out, "m: e");
  put(path, "{\"level\":\"info\",\"msg\":\"ok\"}\n{\"level\":5}\n");
  CHECK_EQ(hcsb__grunc_log_error(path, out, sizeof out), -ENOENT);
  /* A long message is cut, not overrun. */
  {
    char line[1200];
    snprintf(line, sizeof line, "{\"level\":\"error\",\"msg\":\"%0900d\"}\n",
             7);
    put(path, line);
    CHECK_EQ(hcsb__grunc_log_error(path, out, sizeof out), 0);
    CHECK_EQ(strlen(out), sizeof out - 1);
  }
}

static void test_runc_pid_file(void) {
  char path[1024];
  pid_t pid = 0;

  snprintf(path, sizeof path, "%s/pid", hcsb_test_tmpdir());
  CHECK_EQ(hcsb__grunc_read_pid(path, &pid), -ENOENT);
  put(path, "4242");
  CHECK_EQ(hcsb__grunc_read_pid(path, &pid), 0);
  CHECK_EQ(pid, 4242);
  put(path, "77\n");
  CHECK_EQ(hcsb__grunc_read_pid(path, &pid), 0);
  CHECK_EQ(pid, 77);
  put(path, "");
  CHECK_EQ(hcsb__grunc_read_pid(path, &pid), -EINVAL);
  put(path, "12x");
  CHECK_EQ(hcsb__grunc_read_pid(path, &pid), -EINVAL);
  put(path, "1"); /* never init */
  CHECK_EQ(hcsb__grunc_read_pid(path, &pid), -EINVAL);
  put(path, "-5");
  CHECK_EQ(hcsb__grunc_read_pid(path, &pid), -EINVAL);
  put(path, "99999999999");
  CHECK_EQ(hcsb__grunc_read_pid(path, &pid), -EINVAL);
}

/* Sends `n` fds over a connection to the console socket, as runc does. */
static void send_fds(const char *path, const int *fds, int n) {
  struct sockaddr_un sa;
  union {
    char buf[CMSG_SPACE(4 * sizeof(int))];
    struct cmsghdr align;
  } ctl;
  char name[] = "/dev/pts/7";
  struct iovec iov = {name, sizeof name};
  struct msghdr msg;
  struct cmsghdr *cm;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  CHECK(s >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  CHECK_EQ(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
  memset(&msg, 0, sizeof msg);
  memset(&ctl, 0, sizeof ctl);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (n > 0) {
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
  }
  CHECK_EQ(sendmsg(s, &msg, 0), (ssize_t)sizeof name);
  close(s);
}

static int open_fds(void) {
  int fd, n = 0;
  for (fd = 0; fd < 1024; fd++)
    if (fcntl(fd, F_GETFD) >= 0) n++;
  return n;
}

static void test_console_socket(void) {
  char path[256];
  int lfd, got, p[2], two[2], before;
  struct stat a, b;

  snprintf(path, sizeof path, "%s/con.sock", hcsb_test_tmpdir());
  before = open_fds();
  lfd = hcsb__grunc_console_listen(path);
  CHECK(lfd >= 0);
  /* Nobody connected (runc failed before it got there). */
  CHECK_EQ(hcsb__grunc_console_recv(lfd), -ENOTCONN);
  /* The fd runc sends is the one received. */
  CHECK_EQ(pipe(p), 0);
  send_fds(path, &p[0], 1);
  got = hcsb__grunc_console_recv(lfd);
  CHECK(got >= 0);
  CHECK_EQ(fstat(got, &a), 0);
  CHECK_EQ(fstat(p[0], &b), 0);
  CHECK_EQ(a.st_ino, b.st_ino);
  CHECK(fcntl(got, F_GETFD) & FD_CLOEXEC);
  close(got);
  /* A connection without an fd, then one with two (the second closed). */
  send_fds(path, NULL, 0);
  CHECK(hcsb__grunc_console_recv(lfd) < 0);
  two[0] = p[0];
  two[1] = p[1];
  send_fds(path, two, 2);
  got = hcsb__grunc_console_recv(lfd);
  CHECK(got >= 0);
  close(got);
  close(p[0]);
  close(p[1]);
  close(lfd);
  CHECK_EQ(open_fds(), before);
  /* A path too long for sun_path. */
  {
    char long_path[300];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    CHECK_EQ(hcsb__grunc_console_listen(long_path), -ENAMETOOLONG);
  }
}

static void test_status_text(void) {
  char t[64], eb[128];

  hcsb__ga_status_text(1 << 8, t, sizeof t);
  CHECK_STR(t, "exit status 1");
  hcsb__ga_status_text(SIGKILL, t, sizeof t);
  CHECK_STR(t, "signal: killed");
  hcsb__ga_status_text(-ETIMEDOUT, t, sizeof t);
  CHECK(strncmp(t, "timed out after ", 16) == 0);
  hcsb__ga_status_text(-ENOENT, t, sizeof t);
  CHECK_STR(t, "no such file or directory");
  CHECK_STR(hcsb__ga_errstr(EBUSY, eb), "device or resource busy");
}

/* ------------------------------------------------------------------------ */
/* Jobs: helper commands on a loop, reaped the way the guest reaps them. */

typedef struct jobrun_s {
  int calls, status;
  char out[HCSB__GA_JOB_OUTPUT + 1];
  uint64_t seq;
} jobrun_t;

static void job_done(void *data, int status, const char *out, uint64_t seq) {
  jobrun_t *j = data;
  j->calls++;
  j->status = status;
  j->seq = seq;
  snprintf(j->out, sizeof j->out, "%s", out);
}

static void on_child(uv_signal_t *h, int sig) {
  hcsb__guest_t *g = h->data;
  int status;
  pid_t pid;

  (void)sig;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    hcsb__ga_reaped(g, pid, status);
}

typedef struct rig_s {
  uv_loop_t loop;
  uv_signal_t sigchld;
  hcsb__guest_t g;
  hcsb__gact_t *act;
} rig_t;

static void rig_init(rig_t *r) {
  memset(r, 0, sizeof *r);
  CHECK_EQ(uv_loop_init(&r->loop), 0);
  r->g.loop = &r->loop;
  r->act = calloc(1, sizeof *r->act);
  CHECK(r->act != NULL);
  TAILQ_INIT(&r->act->jobs);
  TAILQ_INIT(&r->act->ops);
  TAILQ_INIT(&r->act->mounts);
  TAILQ_INIT(&r->act->creating);
  r->g.act = r->act;
  CHECK_EQ(uv_signal_init(&r->loop, &r->sigchld), 0);
  r->sigchld.data = &r->g;
  CHECK_EQ(uv_signal_start(&r->sigchld, on_child, SIGCHLD), 0);
}

static void rig_until(rig_t *r, const int *flag) {
  int i;
  for (i = 0; i < 20000 && !*flag; i++) uv_run(&r->loop, UV_RUN_ONCE);
  CHECK(*flag);
}

static void rig_free(rig_t *r) {
  uv_close((uv_handle_t *)&r->sigchld, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&r->loop), 0);
  CHECK_EQ(r->act->njobs, 0);
  free(r->act);
}

static void test_jobs(void) {
  const char *sh_argv[] = {"/bin/sh", "-c",
                           "echo to-out; echo to-err >&2; exit 3", NULL};
  const char *cat_argv[] = {"/bin/cat", NULL};
  const char *none[] = {"/no/such/helper", NULL};
  const int capture[3] = {-2, -1, -1};
  jobrun_t a, b;
  int fds[3], p[2];
  char buf[16];
  rig_t r;

  rig_init(&r);
  memset(&a, 0, sizeof a);
  CHECK_EQ(hcsb__gjob_run(&r.g, sh_argv, capture, job_done, &a), 0);
  CHECK_EQ(a.calls, 0); /* never inside the starting call */
  rig_until(&r, &a.calls);
  CHECK_EQ(a.calls, 1);
  CHECK(WIFEXITED(a.status) && WEXITSTATUS(a.status) == 3);
  CHECK_STR(a.out, "to-out\nto-err\n");

  /* Given fds are used as they are (and stay the caller's). */
  CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
  fds[0] = -2;
  fds[1] = p[1];
  fds[2] = -2;
  memset(&b, 0, sizeof b);
  {
    const char *echo_argv[] = {"/bin/sh", "-c", "printf given", NULL};
    CHECK_EQ(hcsb__gjob_run(&r.g, echo_argv, fds, job_done, &b), 0);
  }
  close(p[1]);
  rig_until(&r, &b.calls);
  CHECK_EQ(b.status, 0);
  CHECK_STR(b.out, "");
  CHECK_EQ(read(p[0], buf, sizeof buf), 5);
  CHECK(memcmp(buf, "given", 5) == 0);
  close(p[0]);

  /* A helper that cannot start: an error now, no callback ever. */
  memset(&b, 0, sizeof b);
  CHECK_EQ(hcsb__gjob_run(&r.g, none, capture, job_done, &b), -ENOENT);

  /* The bridge closing cancels what runs: the callback hears -ECANCELED
   * once and the helper is killed. */
  memset(&a, 0, sizeof a);
  CHECK_EQ(hcsb__gjob_run(&r.g, cat_argv, capture, job_done, &a), 0);
  hcsb__ga_teardown(&r.g);
  rig_until(&r, &a.calls);
  CHECK_EQ(a.status, -ECANCELED);
  {
    int i;
    for (i = 0; i < 50; i++) uv_run(&r.loop, UV_RUN_NOWAIT);
  }
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(b.calls, 0);
  rig_free(&r);
}

/* Helpers in flight are bounded; the session's end cancels them all. */
static void test_jobs_bounded(void) {
  const char *sleep_argv[] = {"/bin/sleep", "100", NULL};
  const int none[3] = {-2, -2, -2};
  static jobrun_t runs[HCSB__GA_MAX_JOBS + 1];
  int all = 0;
  unsigned i;
  rig_t r;

  rig_init(&r);
  memset(runs, 0, sizeof runs);
  for (i = 0; i < HCSB__GA_MAX_JOBS; i++)
    CHECK_EQ(hcsb__gjob_run(&r.g, sleep_argv, none, job_done, &runs[i]), 0);
  CHECK_EQ(hcsb__gjob_run(&r.g, sleep_argv, none, job_done,
                          &runs[HCSB__GA_MAX_JOBS]),
           -EAGAIN);
  hcsb__ga_teardown(&r.g);
  while (!all) {
    uv_run(&r.loop, UV_RUN_ONCE);
    all = 1;
    for (i = 0; i < HCSB__GA_MAX_JOBS; i++)
      if (runs[i].calls == 0) all = 0;
  }
  for (i = 0; i < HCSB__GA_MAX_JOBS; i++) {
    CHECK_EQ(runs[i].calls, 1);
    CHECK_EQ(runs[i].status, -ECANCELED);
  }
  CHECK_EQ(runs[HCSB__GA_MAX_JOBS].calls, 0);
  /* The killed helpers are reaped (as orphans now) before the loop goes. */
  for (i = 0; i < 200; i++) {
    int st;
    if (waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD) break;
    uv_run(&r.loop, UV_RUN_NOWAIT);
    usleep(10000);
  }
  rig_free(&r);
}

static void test_orphans(void) {
  hcsb__gact_t *a = calloc(1, sizeof *a);
  hcsb__guest_t g;
  int st = 0;
  unsigned i;

  CHECK(a != NULL);
  memset(&g, 0, sizeof g);
  TAILQ_INIT(&a->jobs);
  g.act = a;
  /* Reaped before anyone knew its PID: claimed once, only by a helper that
   * started before the reap. */
  hcsb__ga_reaped(&g, 500, 7 << 8);
  CHECK_EQ(hcsb__ga_claim(&g, 500, 1, &st), 0); /* started after it */
  CHECK_EQ(hcsb__ga_claim(&g, 501, 0, &st), 0);
  CHECK_EQ(hcsb__ga_claim(&g, 500, 0, &st), 1);
  CHECK_EQ(st, 7 << 8);
  CHECK_EQ(hcsb__ga_claim(&g, 500, 0, &st), 0);
  /* Bounded: the oldest go first. */
  for (i = 0; i < HCSB__GA_ORPHANS + 10; i++)
    hcsb__ga_reaped(&g, (pid_t)(1000 + i), (int)i);
  CHECK_EQ(hcsb__ga_claim(&g, 1000, 0, &st), 0);
  CHECK_EQ(hcsb__ga_claim(&g, 1009, 0, &st), 0);
  CHECK_EQ(hcsb__ga_claim(&g, 1010, 0, &st), 1);
  CHECK_EQ(st, 10);
  CHECK_EQ(hcsb__ga_claim(&g, (pid_t)(1000 + HCSB__GA_ORPHANS + 9), 0, &st), 1);
  free(a);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(dm_linear),         TEST_ENTRY(dm_verity),
      TEST_ENTRY(dm_names),          TEST_ENTRY(overlay_data),
      TEST_ENTRY(path_checks),       TEST_ENTRY(fs_helpers),
      TEST_ENTRY(spec_adapt),        TEST_ENTRY(spec_files),
      TEST_ENTRY(spec_exec_process), TEST_ENTRY(spec_write),
      TEST_ENTRY(runc_argv),         TEST_ENTRY(runc_log),
      TEST_ENTRY(runc_pid_file),     TEST_ENTRY(console_socket),
      TEST_ENTRY(status_text),       TEST_ENTRY(jobs),
      TEST_ENTRY(jobs_bounded),      TEST_ENTRY(orphans),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
