/* The default image built on first use (src/shim/image.h), with a fake
 * hcsb-mkuvm that writes the two files and counts its runs: built once
 * even when several shims ask at the same time, there at once when it
 * exists, never built for an explicitly configured image, and a failing
 * build reported with the builder's output left nowhere half-done. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"
#include "shim/image.h"

static uv_loop_t loop;
static int done[4], status[4];
static char dir[512], counter[512], fake[512];

static void on_image(void *data, int st) {
  int i = (int)(intptr_t)data;
  done[i]++;
  status[i] = st;
}

/* A fake mkuvm: counts itself, sleeps a little (so concurrent callers
 * overlap), writes -o DIR's files, or fails when told to. */
static void make_fake(const char *mode) {
  FILE *f;

  snprintf(fake, sizeof(fake), "%s/fake-mkuvm", hcsb_test_tmpdir());
  snprintf(counter, sizeof(counter), "%s/runs", hcsb_test_tmpdir());
  f = fopen(fake, "w");
  CHECK(f != NULL);
  fprintf(f,
          "#!/bin/sh\n"
          "echo run >>'%s'\n"
          "[ \"$1\" = -q ] && [ \"$2\" = -o ] || exit 2\n"
          "sleep 0.2\n"
          "if [ '%s' = fail ]; then echo 'no kernel package' >&2; "
          "mkdir -p \"$3\"; echo half >\"$3/vmlinuz\"; exit 1; fi\n"
          "mkdir -p \"$3\" && echo k >\"$3/vmlinuz\" && "
          "echo i >\"$3/initrd.img\"\n",
          counter, mode);
  fclose(f);
  CHECK_EQ(chmod(fake, 0755), 0);
}

static int runs(void) {
  FILE *f = fopen(counter, "r");
  char line[64];
  int n = 0;

  if (f == NULL) return 0;
  while (fgets(line, sizeof(line), f) != NULL) n++;
  fclose(f);
  return n;
}

static void config(hcsb__shim_config_t *cfg) {
  char text[1024];
  char err[256];

  snprintf(dir, sizeof(dir), "%s/cache/uvm", hcsb_test_tmpdir());
  CHECK(snprintf(text, sizeof(text), "image_dir = %s\nmkuvm = %s\n", dir,
                 fake) < (int)sizeof(text));
  CHECK_EQ(hcsb__shim_config_defaults(cfg), 0);
  CHECK_EQ(
      hcsb__shim_config_parse(cfg, "t", text, strlen(text), err, sizeof(err)),
      0);
}

static void run_all(void) {
  uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_built_once(void) {
  hcsb__shim_config_t cfg;
  char path[600];
  int i;

  make_fake("ok");
  config(&cfg);
  CHECK_EQ(uv_loop_init(&loop), 0);
  /* Three shims at once (three builders racing for the lock). */
  for (i = 0; i < 3; i++)
    CHECK_EQ(
        hcsb__shim_image_ensure(&loop, &cfg, on_image, (void *)(intptr_t)i), 0);
  CHECK_EQ(done[0] + done[1] + done[2], 0); /* never inside the call */
  run_all();
  for (i = 0; i < 3; i++) {
    CHECK_EQ(done[i], 1);
    CHECK_EQ(status[i], 0);
  }
  CHECK_EQ(runs(), 1);
  snprintf(path, sizeof(path), "%s/initrd.img", dir);
  CHECK(access(path, R_OK) == 0);
  /* There now: no build. */
  CHECK_EQ(hcsb__shim_image_ensure(&loop, &cfg, on_image, (void *)3), 0);
  CHECK_EQ(done[3], 0);
  run_all();
  CHECK_EQ(done[3], 1);
  CHECK_EQ(status[3], 0);
  CHECK_EQ(runs(), 1);
  CHECK_EQ(uv_loop_close(&loop), 0);
  hcsb__shim_config_free(&cfg);
}

static void test_build_fails(void) {
  hcsb__shim_config_t cfg;
  char path[600];

  make_fake("fail");
  config(&cfg);
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(hcsb__shim_image_ensure(&loop, &cfg, on_image, (void *)0), 0);
  run_all();
  CHECK_EQ(done[0], 1);
  CHECK_EQ(status[0], -ECHILD);
  /* Nothing half-built is left where the shim looks. */
  snprintf(path, sizeof(path), "%s/vmlinuz", dir);
  CHECK(access(path, F_OK) < 0);
  CHECK_EQ(uv_loop_close(&loop), 0);
  hcsb__shim_config_free(&cfg);
}

static void test_explicit_image_not_built(void) {
  hcsb__shim_config_t cfg;
  char err[256];
  const char *text = "kernel = /nonexistent/vmlinuz\n";

  make_fake("ok");
  CHECK_EQ(hcsb__shim_config_defaults(&cfg), 0);
  CHECK_EQ(
      hcsb__shim_config_parse(&cfg, "t", text, strlen(text), err, sizeof(err)),
      0);
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(hcsb__shim_image_ensure(&loop, &cfg, on_image, (void *)0), 0);
  CHECK_EQ(done[0], 0);
  run_all();
  CHECK_EQ(done[0], 1);
  CHECK_EQ(status[0], -ENOENT);
  CHECK_EQ(runs(), 0);
  CHECK_EQ(uv_loop_close(&loop), 0);
  hcsb__shim_config_free(&cfg);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(built_once),
      TEST_ENTRY(build_fails),
      TEST_ENTRY(explicit_image_not_built),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
