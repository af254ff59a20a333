/* The shim's configuration (src/shim/conf.h): defaults, every key, the
 * syntax (comments, quotes, spaces), errors that name the line, and
 * loading through $HCSB_SHIM_CONFIG. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "shim/conf.h"

static int parse(hcsb__shim_config_t *cfg, const char *text, char *err,
                 size_t errlen) {
  CHECK_EQ(hcsb__shim_config_defaults(cfg), 0);
  return hcsb__shim_config_parse(cfg, "t.conf", text, strlen(text), err,
                                 errlen);
}

static void test_defaults(void) {
  hcsb__shim_config_t cfg;

  CHECK_EQ(hcsb__shim_config_defaults(&cfg), 0);
  CHECK(cfg.guest == NULL);
  CHECK(cfg.path == NULL);
  CHECK_EQ(cfg.memory_mb, 512);
  CHECK_EQ(cfg.cpus, 1);
  CHECK_EQ(cfg.boot_timeout_ms, 120000);
  CHECK_EQ(cfg.time_limit_s, 0);
  CHECK_STR(cfg.accel, "auto");
  CHECK_STR(cfg.qemu, "qemu-system-x86_64");
  CHECK_STR(cfg.socket_dir, "/run/containerd/s");
  CHECK_STR(cfg.run_dir, "/run/hcsbridge");
  CHECK_EQ(cfg.log_level, HCSB_LOG_INFO);
  /* Configure's directories. */
  CHECK_STR(cfg.mkuvm, HCSB_SHIM_BINDIR "/hcsb-mkuvm");
  CHECK_STR(cfg.vsockd, HCSB_SHIM_LIBEXECDIR "/hcsb-vsockd");
  CHECK_STR(cfg.image_dir, HCSB_SHIM_LOCALSTATEDIR "/cache/hcsbridge/uvm");
  CHECK_STR(cfg.layer_dir, HCSB_SHIM_LOCALSTATEDIR "/cache/hcsbridge/layers");
  CHECK_STR(cfg.kernel, HCSB_SHIM_LOCALSTATEDIR "/cache/hcsbridge/uvm/vmlinuz");
  CHECK_STR(cfg.initrd,
            HCSB_SHIM_LOCALSTATEDIR "/cache/hcsbridge/uvm/initrd.img");
  CHECK(cfg.kernel_default && cfg.initrd_default);
  CHECK(cfg.guest_cmd == NULL && cfg.kernel_args == NULL);
  CHECK_EQ(cfg.nguest_files, 0);
  hcsb__shim_config_free(&cfg);
}

static void test_every_key(void) {
  static const char text[] =
      "# a comment\n"
      "\n"
      "  guest = spawn:exec /usr/libexec/hcsb-guest  \n"
      "image_dir=/img\n"
      "mkuvm = /opt/mkuvm\n"
      "initrd = /boot/initrd\n"
      "guest_cmd = \" hcsb-guest --vsock \"\n"
      "guest_file = /usr/bin/runc\n"
      "guest_file = /etc/a:/etc/b\n"
      "kernel_args = \"\"\n"
      "memory_mb = 1024\n"
      "cpus = 2\n"
      "accel = tcg\n"
      "boot_timeout_ms = 600000\n"
      "time_limit_s = 300\n"
      "qemu = /usr/bin/qemu-system-x86_64\n"
      "vsockd = /v\n"
      "run_dir = /r\n"
      "layer_dir = /l\n"
      "socket_dir = /s\n"
      "log_level = debug\r\n"
      "\t# indented comment";
  hcsb__shim_config_t cfg;
  char err[256];

  CHECK_EQ(parse(&cfg, text, err, sizeof(err)), 0);
  CHECK_STR(err, "");
  CHECK_STR(cfg.guest, "spawn:exec /usr/libexec/hcsb-guest");
  CHECK_STR(cfg.image_dir, "/img");
  CHECK_STR(cfg.mkuvm, "/opt/mkuvm");
  /* kernel follows image_dir; initrd was given. */
  CHECK_STR(cfg.kernel, "/img/vmlinuz");
  CHECK(cfg.kernel_default);
  CHECK_STR(cfg.initrd, "/boot/initrd");
  CHECK(!cfg.initrd_default);
  CHECK_STR(cfg.guest_cmd, " hcsb-guest --vsock ");
  CHECK_EQ(cfg.nguest_files, 2);
  CHECK_STR(cfg.guest_files[0], "/usr/bin/runc");
  CHECK_STR(cfg.guest_files[1], "/etc/a:/etc/b");
  CHECK_STR(cfg.kernel_args, "");
  CHECK_EQ(cfg.memory_mb, 1024);
  CHECK_EQ(cfg.cpus, 2);
  CHECK_STR(cfg.accel, "tcg");
  CHECK_EQ(cfg.boot_timeout_ms, 600000);
  CHECK_EQ(cfg.time_limit_s, 300);
  CHECK_STR(cfg.qemu, "/usr/bin/qemu-system-x86_64");
  CHECK_STR(cfg.vsockd, "/v");
  CHECK_STR(cfg.run_dir, "/r");
  CHECK_STR(cfg.layer_dir, "/l");
  CHECK_STR(cfg.socket_dir, "/s");
  CHECK_EQ(cfg.log_level, HCSB_LOG_DEBUG);
  hcsb__shim_config_free(&cfg);

  /* guest = vm is the default again. */
  CHECK_EQ(parse(&cfg, "guest = vm\nkernel = /k", err, sizeof(err)), 0);
  CHECK(cfg.guest == NULL);
  CHECK_STR(cfg.kernel, "/k");
  CHECK(!cfg.kernel_default);
  hcsb__shim_config_free(&cfg);
}

/* Each bad text is refused with a message naming its line. */
static void test_errors(void) {
  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"memroy_mb = 5", "t.conf:1: unknown key 'memroy_mb'"},
      {"\n\nmemory_mb = lots", "t.conf:3: memory_mb: 'lots' is not a number"},
      {"memory_mb = 12", "t.conf:1: memory_mb: '12' is not a number from 64"},
      {"cpus = -1", "t.conf:1: cpus: '-1'"},
      {"cpus = 99999999999999999999", "t.conf:1: cpus:"},
      {"cpus = 2x", "t.conf:1: cpus: '2x'"},
      {"cpus = 1\ncpus = 2", "t.conf:2: cpus given twice"},
      {"kernel = vmlinuz", "t.conf:1: kernel: 'vmlinuz' is not an absolute"},
      {"accel = hvf", "t.conf:1: accel: 'hvf' is not kvm, tcg or auto"},
      {"log_level = loud", "t.conf:1: log_level: 'loud'"},
      {"guest = bogus://x", "t.conf:1: guest: 'bogus://x' is neither vm"},
      {"guest = \"vm", "t.conf:1: guest: unterminated quote"},
      {"just words", "t.conf:1: expected key = value"},
      {"qemu =", "t.conf:1: qemu: empty"},
      {"guest_file =", "t.conf:1: guest_file: empty"},
      {"socket_dir = /a/very/long/directory/name/for/sockets/xxxxxxxxxx",
       "t.conf:1: socket_dir: longer than 42 bytes"},
  };
  hcsb__shim_config_t cfg;
  char err[256];
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int r = parse(&cfg, bad[i].text, err, sizeof(err));
    if (r != -EINVAL || strncmp(err, bad[i].msg, strlen(bad[i].msg)) != 0)
      hcsb_test_fail(__FILE__, __LINE__, "'%s': %d '%s'", bad[i].text, r, err);
    hcsb__shim_config_free(&cfg);
  }
  /* A NUL byte and an overlong line. */
  CHECK_EQ(hcsb__shim_config_defaults(&cfg), 0);
  CHECK_EQ(hcsb__shim_config_parse(&cfg, "t.conf", "cpus = 1\0", 9, err,
                                   sizeof(err)),
           -EINVAL);
  CHECK_STR(err, "t.conf:1: a NUL byte");
  hcsb__shim_config_free(&cfg);
  {
    size_t n = 5000;
    char *big = malloc(n + 1);
    CHECK(big != NULL);
    memset(big, 'a', n);
    big[n] = '\0';
    CHECK_EQ(parse(&cfg, big, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "line longer than") != NULL);
    hcsb__shim_config_free(&cfg);
    free(big);
  }
  /* No room for a message is fine too. */
  CHECK_EQ(parse(&cfg, "x = 1", err, 0), -EINVAL);
  hcsb__shim_config_free(&cfg);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  fputs(text, f);
  fclose(f);
}

static void test_load(void) {
  hcsb__shim_config_t cfg;
  char path[512], err[256];

  snprintf(path, sizeof(path), "%s/shim.conf", hcsb_test_tmpdir());
  write_file(path, "cpus = 3\nguest = spawn:exec /bin/true\n");
  setenv("HCSB_SHIM_CONFIG", path, 1);
  CHECK_STR(hcsb__shim_config_path(), path);
  CHECK_EQ(hcsb__shim_config_load(&cfg, err, sizeof(err)), 0);
  CHECK_EQ(cfg.cpus, 3);
  CHECK_STR(cfg.path, path);
  hcsb__shim_config_free(&cfg);

  write_file(path, "cpus = three\n");
  CHECK_EQ(hcsb__shim_config_load(&cfg, err, sizeof(err)), -EINVAL);
  CHECK(strstr(err, "shim.conf:1: cpus: 'three'") != NULL);
  hcsb__shim_config_free(&cfg);

  /* A file named by the environment must exist. */
  snprintf(path, sizeof(path), "%s/none.conf", hcsb_test_tmpdir());
  setenv("HCSB_SHIM_CONFIG", path, 1);
  CHECK_EQ(hcsb__shim_config_load(&cfg, err, sizeof(err)), -ENOENT);
  CHECK(strstr(err, "none.conf") != NULL);
  hcsb__shim_config_free(&cfg);

  /* A directory is not a configuration. */
  setenv("HCSB_SHIM_CONFIG", hcsb_test_tmpdir(), 1);
  CHECK_EQ(hcsb__shim_config_load(&cfg, err, sizeof(err)), -EINVAL);
  hcsb__shim_config_free(&cfg);

  /* Unset: the compiled-in path. */
  unsetenv("HCSB_SHIM_CONFIG");
  CHECK_STR(hcsb__shim_config_path(), HCSB_SHIM_CONFIG_PATH);
}

static void test_log_levels(void) {
  hcsb_log_level_t l;

  CHECK_EQ(hcsb__shim_log_level_parse("error", &l), 0);
  CHECK_EQ(l, HCSB_LOG_ERROR);
  CHECK_EQ(hcsb__shim_log_level_parse("warning", &l), 0);
  CHECK_EQ(l, HCSB_LOG_WARN);
  CHECK_EQ(hcsb__shim_log_level_parse("trace", &l), 0);
  CHECK_EQ(l, HCSB_LOG_TRACE);
  CHECK_EQ(hcsb__shim_log_level_parse("Info", &l), -EINVAL);
}

/* The installed sample documents the real defaults: as shipped (all
 * commented) it is the defaults, and with its "#key = value" lines
 * uncommented it still is (the example-only keys aside). */
static void test_sample_is_the_defaults(void) {
  static const char *const examples[] = {"#guest_file", "#guest_cmd",
                                         "#kernel_args"};
  hcsb__shim_config_t def, cfg;
  char err[256], *text, *out, *line, *save = NULL;
  size_t len, i, keys = 0;

  text = (char *)hcsb_test_read_file(
      hcsb_test_build_path("src/shim/shim.conf.sample"), &len);
  CHECK(strstr(text, "@") == NULL); /* every directory substituted */
  CHECK_EQ(hcsb__shim_config_defaults(&def), 0);
  CHECK_EQ(parse(&cfg, text, err, sizeof(err)), 0);
  CHECK_EQ(cfg.memory_mb, def.memory_mb);
  hcsb__shim_config_free(&cfg);

  out = calloc(1, len + 1);
  CHECK(out != NULL);
  for (line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    int example = 0;
    for (i = 0; i < 3; i++)
      if (strncmp(line, examples[i], strlen(examples[i])) == 0) example = 1;
    if (!example && line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' &&
        strstr(line, " = ") != NULL) {
      line++;
      keys++;
    }
    strcat(out, line);
    strcat(out, "\n");
  }
  CHECK_EQ(keys, 16); /* every key but the three examples */
  if (parse(&cfg, out, err, sizeof(err)) != 0)
    hcsb_test_fail(__FILE__, __LINE__, "sample: %s", err);
  CHECK(cfg.guest == NULL);
  CHECK_STR(cfg.image_dir, def.image_dir);
  CHECK_STR(cfg.mkuvm, def.mkuvm);
  CHECK_STR(cfg.kernel, def.kernel);
  CHECK_STR(cfg.initrd, def.initrd);
  CHECK_EQ(cfg.memory_mb, def.memory_mb);
  CHECK_EQ(cfg.cpus, def.cpus);
  CHECK_STR(cfg.accel, def.accel);
  CHECK_EQ(cfg.boot_timeout_ms, def.boot_timeout_ms);
  CHECK_EQ(cfg.time_limit_s, def.time_limit_s);
  CHECK_STR(cfg.qemu, def.qemu);
  CHECK_STR(cfg.vsockd, def.vsockd);
  CHECK_STR(cfg.run_dir, def.run_dir);
  CHECK_STR(cfg.layer_dir, def.layer_dir);
  CHECK_STR(cfg.socket_dir, def.socket_dir);
  CHECK_EQ(cfg.log_level, def.log_level);
  hcsb__shim_config_free(&cfg);
  hcsb__shim_config_free(&def);
  free(out);
  free(text);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(defaults),   TEST_ENTRY(every_key),
      TEST_ENTRY(errors),     TEST_ENTRY(load),
      TEST_ENTRY(log_levels), TEST_ENTRY(sample_is_the_defaults),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
