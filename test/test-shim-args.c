/* The shim's pure helpers: SHA-256 against FIPS 180-4's examples, Go's
 * filepath.Clean against Go's own table, the command line as containerd
 * writes it, the socket name; and the bundle's cleanup record (state.h):
 * its file format, pid start times, and what cleanup refuses. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"
#include "shim/args.h"
#include "shim/sha256.h"
#include "shim/state.h"

static void test_sha256(void) {
  char hex[65];
  char *million = malloc(1000000);
  hcsb__sha256_t c;
  uint8_t d[32];
  size_t i;

  hcsb__sha256_hex("", 0, hex);
  CHECK_STR(hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hcsb__sha256_hex("abc", 3, hex);
  CHECK_STR(hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  hcsb__sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                   56, hex);
  CHECK_STR(hex,
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(million != NULL);
  memset(million, 'a', 1000000);
  hcsb__sha256_hex(million, 1000000, hex);
  CHECK_STR(hex,
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  /* The same, fed in odd pieces. */
  hcsb__sha256_init(&c);
  for (i = 0; i < 1000000; i += 997)
    hcsb__sha256_update(&c, million + i, i + 997 > 1000000 ? 1000000 - i : 997);
  hcsb__sha256_final(&c, d);
  CHECK_EQ(d[0], 0xcd);
  CHECK_EQ(d[31], 0xd0);
  free(million);
}

static void test_path_clean(void) {
  /* Go's path/filepath clean tests (Unix). */
  static const char *const cases[][2] = {
      {"abc", "abc"},
      {"abc/def", "abc/def"},
      {"a/b/c", "a/b/c"},
      {".", "."},
      {"..", ".."},
      {"../..", "../.."},
      {"../../abc", "../../abc"},
      {"/abc", "/abc"},
      {"/", "/"},
      {"", "."},
      {"abc/", "abc"},
      {"abc/def/", "abc/def"},
      {"/abc/", "/abc"},
      {"./", "."},
      {"../", ".."},
      {"abc//def//ghi", "abc/def/ghi"},
      {"//abc", "/abc"},
      {"///abc", "/abc"},
      {"abc//", "abc"},
      {"abc/./def", "abc/def"},
      {"/./abc/def", "/abc/def"},
      {"abc/.", "abc"},
      {"abc/def/ghi/../jkl", "abc/def/jkl"},
      {"abc/def/../ghi/../jkl", "abc/jkl"},
      {"abc/def/..", "abc"},
      {"abc/def/../..", "."},
      {"/abc/def/../..", "/"},
      {"abc/def/../../..", ".."},
      {"/abc/def/../../..", "/"},
      {"abc/def/../../../ghi/jkl/../../../mno", "../../mno"},
      {"/../abc", "/abc"},
      {"abc/./../def", "def"},
      {"abc//./../def", "def"},
      {"abc/../../././../def", "../../def"},
  };
  char out[256];
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    CHECK_EQ(hcsb__shim_path_clean(cases[i][0], out, sizeof(out)), 0);
    if (strcmp(out, cases[i][1]) != 0)
      hcsb_test_fail(__FILE__, __LINE__, "clean(%s) = %s, want %s", cases[i][0],
                     out, cases[i][1]);
  }
  CHECK_EQ(hcsb__shim_path_clean("/abc/def", out, 4), -ENAMETOOLONG);
}

static void test_socket_path(void) {
  char out[108];

  /* sha256("/run/containerd/containerd.sock/default/t1"), as
   * containerd's runc shim names that task's socket. */
  CHECK_EQ(hcsb__shim_socket_path("/run/containerd/s",
                                  "/run/containerd/containerd.sock", "default",
                                  "t1", out, sizeof(out)),
           0);
  {
    char hex[65], want[128];
    const char *p = "/run/containerd/containerd.sock/default/t1";
    hcsb__sha256_hex(p, strlen(p), hex);
    snprintf(want, sizeof(want), "/run/containerd/s/%s", hex);
    CHECK_STR(out, want);
  }
  /* The address is cleaned first: the same socket. */
  {
    char again[108];
    CHECK_EQ(hcsb__shim_socket_path("/run/containerd/s",
                                    "/run/containerd//containerd.sock/",
                                    "default", "t1", again, sizeof(again)),
             0);
    CHECK_STR(again, out);
  }
  CHECK_EQ(hcsb__shim_socket_path("/a/directory/name/that/is/far/too/long/for"
                                  "/a/unix/socket",
                                  "/x", "n", "i", out, sizeof(out)),
           -ENAMETOOLONG);
}

static int parse(hcsb__shim_args_t *a, char *err, ...) {
  char *argv[32];
  int argc = 0;
  va_list ap;
  char *s;

  argv[argc++] = "shim";
  va_start(ap, err);
  while ((s = va_arg(ap, char *)) != NULL) argv[argc++] = s;
  va_end(ap);
  argv[argc] = NULL;
  return hcsb__shim_args_parse(argc, argv, a, err, 256);
}

static void test_args(void) {
  hcsb__shim_args_t a;
  char err[256];

  /* containerd's start and delete. */
  CHECK_EQ(parse(&a, err, "-namespace", "default", "-address",
                 "/run/containerd/containerd.sock", "-publish-binary",
                 "/usr/bin/containerd", "-id", "t1", "-debug", "start", NULL),
           0);
  CHECK_EQ(a.action, HCSB__SHIM_START);
  CHECK_STR(a.ns, "default");
  CHECK_STR(a.address, "/run/containerd/containerd.sock");
  CHECK_STR(a.publish_binary, "/usr/bin/containerd");
  CHECK_STR(a.id, "t1");
  CHECK_EQ(a.debug, 1);
  CHECK(a.bundle == NULL);
  CHECK_EQ(parse(&a, err, "--namespace=n", "-id=x", "--bundle", "/b",
                 "-debug=false", "delete", NULL),
           0);
  CHECK_EQ(a.action, HCSB__SHIM_DELETE);
  CHECK_STR(a.ns, "n");
  CHECK_STR(a.id, "x");
  CHECK_STR(a.bundle, "/b");
  CHECK_EQ(a.debug, 0);
  CHECK_STR(a.address, "");
  CHECK_EQ(parse(&a, err, "-v", NULL), 0);
  CHECK_EQ(a.action, HCSB__SHIM_VERSION);
  CHECK_EQ(parse(&a, err, "-namespace", "n", NULL), 0);
  CHECK_EQ(a.action, HCSB__SHIM_NONE);
  CHECK_EQ(parse(&a, err, "--", "serve", NULL), 0);
  CHECK_EQ(a.action, HCSB__SHIM_SERVE);

  CHECK_EQ(parse(&a, err, "-nope", "start", NULL), -EINVAL);
  CHECK_STR(err, "flag provided but not defined: -nope");
  CHECK_EQ(parse(&a, err, "-id", NULL), -EINVAL);
  CHECK_STR(err, "flag needs an argument: -id");
  CHECK_EQ(parse(&a, err, "-debug=maybe", "start", NULL), -EINVAL);
  CHECK_EQ(parse(&a, err, "stop", NULL), -EINVAL);
  CHECK_EQ(parse(&a, err, "start", "now", NULL), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* The cleanup record */

static char *state_text(const char *bundle) {
  char path[512];
  size_t len;

  snprintf(path, sizeof(path), "%s/hcsb-state", bundle);
  return (char *)hcsb_test_read_file(path, &len);
}

static void test_state_file(void) {
  const char *b = hcsb_test_tmpdir();
  unsigned long long me = hcsb__shim_proc_start_time(getpid());
  hcsb__shim_state_t *st;
  char want[512], *text;

  CHECK(me > 0);
  CHECK_EQ(hcsb__shim_proc_start_time(0x7ffffff0), 0);
  CHECK_EQ(hcsb__shim_state_open("relative", &st), -EINVAL);
  CHECK_EQ(hcsb__shim_state_open(b, &st), 0);
  CHECK_EQ(hcsb__shim_state_task_pid(st), 0);
  CHECK_EQ(hcsb__shim_state_add_pid(st, getpid(), "qemu vm1"), 0);
  CHECK_EQ(hcsb__shim_state_add_path(st, "mount", "/run/x/m"), 0);
  CHECK_EQ(hcsb__shim_state_add_path(st, "file", "/run/x/a b"), 0);
  CHECK_EQ(hcsb__shim_state_set_task_pid(st, 7), 0);
  CHECK_EQ(hcsb__shim_state_set_task_pid(st, 8), 0);
  CHECK_EQ(hcsb__shim_state_add_path(st, "file", "rel"), -EINVAL);
  CHECK_EQ(hcsb__shim_state_add_path(st, "file", "/a\nb"), -EINVAL);
  CHECK_EQ(hcsb__shim_state_add_path(st, "disk", "/a"), -EINVAL);
  CHECK_EQ(hcsb__shim_state_add_pid(st, 0x7ffffff0, "x"), -ESRCH);
  text = state_text(b);
  snprintf(want, sizeof(want),
           "# hcsbridge shim state 1\n"
           "pid %d %llu qemu vm1\n"
           "mount /run/x/m\n"
           "file /run/x/a b\n"
           "task-pid 8\n",
           (int)getpid(), me);
  CHECK_STR(text, want);
  free(text);
  hcsb__shim_state_close(st);

  /* Read back (with a line from a newer writer), changed, written. */
  snprintf(want, sizeof(want), "%s/hcsb-state", b);
  {
    FILE *f = fopen(want, "a");
    CHECK(f != NULL);
    fputs("future-kind something\n", f);
    fclose(f);
  }
  CHECK_EQ(hcsb__shim_state_open(b, &st), 0);
  CHECK_EQ(hcsb__shim_state_task_pid(st), 8);
  CHECK_EQ(hcsb__shim_state_remove_pid(st, getpid()), 0);
  CHECK_EQ(hcsb__shim_state_remove_path(st, "mount", "/run/x/m"), 0);
  CHECK_EQ(hcsb__shim_state_remove_path(st, "mount", "/not/there"), 0);
  hcsb__shim_state_close(st);
  text = state_text(b);
  CHECK_STR(text, "# hcsbridge shim state 1\nfile /run/x/a b\ntask-pid 8\n");
  free(text);
}

/* A reused pid is left alone: the start time must match. */
static void test_cleanup_checks_start_time(void) {
  const char *b = hcsb_test_tmpdir();
  char path[512];
  pid_t child;
  pid_t task;
  int status;
  FILE *f;

  child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  snprintf(path, sizeof(path), "%s/hcsb-state", b);
  f = fopen(path, "w");
  CHECK(f != NULL);
  /* Right pid, wrong start time. */
  fprintf(f, "pid %d %llu qemu\ntree /tmp\ntask-pid 5\n", (int)child,
          hcsb__shim_proc_start_time(child) + 1);
  fclose(f);
  /* /tmp is too close to the root to remove: one failure, and the record
   * stays for another try. */
  CHECK_EQ(hcsb__shim_state_cleanup(b, &task), 1);
  CHECK_EQ(task, 5);
  CHECK_EQ(waitpid(child, &status, WNOHANG), 0); /* not killed */
  CHECK(access(path, F_OK) == 0);
  CHECK(access("/tmp", F_OK) == 0);
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(sha256),      TEST_ENTRY(path_clean),
      TEST_ENTRY(socket_path), TEST_ENTRY(args),
      TEST_ENTRY(state_file),  TEST_ENTRY(cleanup_checks_start_time),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
