/* The shim's configuration file (conf.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hcsbridge/messages.h>

#include "shim/conf.h"
#include "shim/readfile.h"

/* Directories configure chose (src/shim/Makefile.inc passes them). */
#ifndef HCSB_SHIM_CONFIG_PATH
#define HCSB_SHIM_CONFIG_PATH "/etc/hcsbridge/shim.conf"
#endif
#ifndef HCSB_SHIM_BINDIR
#define HCSB_SHIM_BINDIR "/usr/local/bin"
#endif
#ifndef HCSB_SHIM_LIBEXECDIR
#define HCSB_SHIM_LIBEXECDIR "/usr/local/libexec"
#endif
#ifndef HCSB_SHIM_LOCALSTATEDIR
#define HCSB_SHIM_LOCALSTATEDIR "/usr/local/var"
#endif

#define FILE_MAX (1u << 20)
/* A socket path is socket_dir, '/', 64 hex digits, and must fit
 * sockaddr_un's 108 bytes with its NUL. */
#define SOCKET_DIR_MAX (107 - 65)

typedef enum {
  T_STR,
  T_PATH,
  T_PROGRAM,
  T_UINT,
  T_LEVEL,
  T_GUEST,
  T_ACCEL,
  T_LIST
} type_t;

typedef struct key_s {
  const char *name;
  type_t type;
  size_t offset;
  unsigned min, max; /* T_UINT */
} cfg_key_t;

#define F(field) offsetof(hcsb__shim_config_t, field)

static const cfg_key_t keys[] = {
    {"guest", T_GUEST, F(guest), 0, 0},
    {"image_dir", T_PATH, F(image_dir), 0, 0},
    {"mkuvm", T_PATH, F(mkuvm), 0, 0},
    {"kernel", T_PATH, F(kernel), 0, 0},
    {"initrd", T_PATH, F(initrd), 0, 0},
    {"guest_cmd", T_STR, F(guest_cmd), 0, 0},
    {"guest_file", T_LIST, F(guest_files), 0, 0},
    {"kernel_args", T_STR, F(kernel_args), 0, 0},
    {"memory_mb", T_UINT, F(memory_mb), 64, 1048576},
    {"cpus", T_UINT, F(cpus), 1, 256},
    {"accel", T_ACCEL, F(accel), 0, 0},
    {"boot_timeout_ms", T_UINT, F(boot_timeout_ms), 100, 86400000},
    {"time_limit_s", T_UINT, F(time_limit_s), 0, 31536000},
    {"qemu", T_PROGRAM, F(qemu), 0, 0},
    {"vsockd", T_PATH, F(vsockd), 0, 0},
    {"run_dir", T_PATH, F(run_dir), 0, 0},
    {"layer_dir", T_PATH, F(layer_dir), 0, 0},
    {"socket_dir", T_PATH, F(socket_dir), 0, 0},
    {"log_level", T_LEVEL, F(log_level), 0, 0},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static char **str_at(hcsb__shim_config_t *cfg, const cfg_key_t *k) {
  return (char **)(void *)((char *)cfg + k->offset);
}

static int set_str(char **dst, const char *v) {
  char *s = v != NULL ? strdup(v) : NULL;

  if (v != NULL && s == NULL) return -ENOMEM;
  free(*dst);
  *dst = s;
  return 0;
}

static int join(char **dst, const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *s = malloc(n);

  if (s == NULL) return -ENOMEM;
  snprintf(s, n, "%s/%s", dir, name);
  free(*dst);
  *dst = s;
  return 0;
}

/* kernel and initrd that were not given follow image_dir. */
static int resolve(hcsb__shim_config_t *cfg) {
  if (cfg->kernel_default && join(&cfg->kernel, cfg->image_dir, "vmlinuz") < 0)
    return -ENOMEM;
  if (cfg->initrd_default &&
      join(&cfg->initrd, cfg->image_dir, "initrd.img") < 0)
    return -ENOMEM;
  return 0;
}

int hcsb__shim_config_defaults(hcsb__shim_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->memory_mb = 512;
  cfg->cpus = 1;
  cfg->boot_timeout_ms = 120000;
  cfg->time_limit_s = 0;
  cfg->log_level = HCSB_LOG_INFO;
  cfg->kernel_default = cfg->initrd_default = 1;
  if (set_str(&cfg->image_dir, HCSB_SHIM_LOCALSTATEDIR "/cache/hcsbridge/uvm") <
          0 ||
      set_str(&cfg->mkuvm, HCSB_SHIM_BINDIR "/hcsb-mkuvm") < 0 ||
      set_str(&cfg->accel, "auto") < 0 ||
      set_str(&cfg->qemu, "qemu-system-x86_64") < 0 ||
      set_str(&cfg->vsockd, HCSB_SHIM_LIBEXECDIR "/hcsb-vsockd") < 0 ||
      set_str(&cfg->run_dir, "/run/hcsbridge") < 0 ||
      set_str(&cfg->layer_dir,
              HCSB_SHIM_LOCALSTATEDIR "/cache/hcsbridge/layers") < 0 ||
      set_str(&cfg->socket_dir, "/run/containerd/s") < 0 || resolve(cfg) < 0) {
    hcsb__shim_config_free(cfg);
    return -ENOMEM;
  }
  return 0;
}

void hcsb__shim_config_free(hcsb__shim_config_t *cfg) {
  size_t i;

  for (i = 0; i < NKEYS; i++) {
    if (keys[i].type == T_UINT || keys[i].type == T_LEVEL ||
        keys[i].type == T_LIST)
      continue;
    free(*str_at(cfg, &keys[i]));
    *str_at(cfg, &keys[i]) = NULL;
  }
  for (i = 0; i < cfg->nguest_files; i++) free(cfg->guest_files[i]);
  free(cfg->guest_files);
  cfg->guest_files = NULL;
  cfg->nguest_files = 0;
  free(cfg->path);
  cfg->path = NULL;
}

int hcsb__shim_log_level_parse(const char *s, hcsb_log_level_t *out) {
  static const struct {
    const char *name;
    hcsb_log_level_t level;
  } levels[] = {
      {"error", HCSB_LOG_ERROR},  {"warn", HCSB_LOG_WARN},
      {"warning", HCSB_LOG_WARN}, {"info", HCSB_LOG_INFO},
      {"debug", HCSB_LOG_DEBUG},  {"trace", HCSB_LOG_TRACE},
  };
  size_t i;

  for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
    if (strcmp(s, levels[i].name) == 0) {
      *out = levels[i].level;
      return 0;
    }
  return -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* Parsing */

typedef struct parser_s {
  const char *name;
  unsigned line;
  char *err;
  size_t errlen;
} parser_t;

static int perr(parser_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int perr(parser_t *p, const char *fmt, ...) {
  va_list ap;
  int n;

  if (p->errlen == 0) return -EINVAL;
  n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->line);
  if (n < 0 || (size_t)n >= p->errlen) return -EINVAL;
  va_start(ap, fmt);
  vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

static int parse_uint(const char *v, unsigned min, unsigned max,
                      unsigned *out) {
  unsigned long n;
  char *end;

  if (*v < '0' || *v > '9') return -EINVAL;
  errno = 0;
  n = strtoul(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < min || n > max) return -EINVAL;
  *out = (unsigned)n;
  return 0;
}

/* Applies one key = value. */
static int apply(hcsb__shim_config_t *cfg, parser_t *p, const cfg_key_t *k,
                 const char *v) {
  hcsb_addr_t addr;
  char **list;

  switch (k->type) {
    case T_UINT:
      if (parse_uint(v, k->min, k->max,
                     (unsigned *)(void *)((char *)cfg + k->offset)) < 0)
        return perr(p, "%s: '%s' is not a number from %u to %u", k->name, v,
                    k->min, k->max);
      return 0;
    case T_LEVEL:
      if (hcsb__shim_log_level_parse(v, &cfg->log_level) < 0)
        return perr(p,
                    "log_level: '%s' is not error, warn, info, debug or "
                    "trace",
                    v);
      return 0;
    case T_ACCEL:
      if (strcmp(v, "kvm") != 0 && strcmp(v, "tcg") != 0 &&
          strcmp(v, "auto") != 0)
        return perr(p, "accel: '%s' is not kvm, tcg or auto", v);
      break;
    case T_GUEST:
      if (strcmp(v, "vm") == 0) return set_str(&cfg->guest, NULL);
      if (hcsb_addr_parse(v, &addr) < 0)
        return perr(p,
                    "guest: '%s' is neither vm nor an hcsbridge address "
                    "(spawn:COMMAND, unix+connect://PATH, ...)",
                    v);
      break;
    case T_PATH:
      if (v[0] != '/')
        return perr(p, "%s: '%s' is not an absolute path", k->name, v);
      if (strcmp(k->name, "socket_dir") == 0 && strlen(v) > SOCKET_DIR_MAX)
        return perr(p,
                    "socket_dir: longer than %d bytes, too long for the "
                    "socket paths under it",
                    SOCKET_DIR_MAX);
      break;
    case T_PROGRAM:
    case T_STR:
      if (*v == '\0' && k->type == T_PROGRAM)
        return perr(p, "%s: empty", k->name);
      break;
    case T_LIST:
      if (*v == '\0') return perr(p, "guest_file: empty");
      if (cfg->nguest_files >= 256) return perr(p, "guest_file: over 256");
      list = realloc(cfg->guest_files, (cfg->nguest_files + 1) * sizeof(*list));
      if (list == NULL) return -ENOMEM;
      cfg->guest_files = list;
      list[cfg->nguest_files] = strdup(v);
      if (list[cfg->nguest_files] == NULL) return -ENOMEM;
      cfg->nguest_files++;
      return 0;
  }
  if (strcmp(k->name, "kernel") == 0) cfg->kernel_default = 0;
  if (strcmp(k->name, "initrd") == 0) cfg->initrd_default = 0;
  return set_str(str_at(cfg, k), v);
}

static char *trim(char *s) {
  char *e;

  while (*s == ' ' || *s == '\t') s++;
  e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
  *e = '\0';
  return s;
}

int hcsb__shim_config_parse(hcsb__shim_config_t *cfg, const char *name,
                            const char *text, size_t len, char *err,
                            size_t errlen) {
  unsigned char seen[NKEYS];
  parser_t p = {name, 0, err, errlen};
  size_t at = 0;
  char line[4096];
  int r = 0;

  if (errlen > 0) err[0] = '\0';
  memset(seen, 0, sizeof(seen));
  while (at < len && r == 0) {
    const char *nl = memchr(text + at, '\n', len - at);
    size_t n = nl != NULL ? (size_t)(nl - (text + at)) : len - at;
    char *key, *val, *eq;
    size_t i, vl;

    p.line++;
    if (n >= sizeof(line)) {
      r = perr(&p, "line longer than %zu bytes", sizeof(line) - 1);
      break;
    }
    memcpy(line, text + at, n);
    line[n] = '\0';
    at += n + (nl != NULL);
    if (memchr(line, '\0', n) != NULL) {
      r = perr(&p, "a NUL byte");
      break;
    }
    key = trim(line);
    if (*key == '\0' || *key == '#') continue;
    eq = strchr(key, '=');
    if (eq == NULL) {
      r = perr(&p, "expected key = value");
      break;
    }
    *eq = '\0';
    key = trim(key);
    val = trim(eq + 1);
    vl = strlen(val);
    if (vl > 0 && val[0] == '"') {
      if (vl < 2 || val[vl - 1] != '"') {
        r = perr(&p, "%s: unterminated quote", key);
        break;
      }
      val[vl - 1] = '\0';
      val++;
    }
    for (i = 0; i < NKEYS; i++)
      if (strcmp(keys[i].name, key) == 0) break;
    if (i == NKEYS) {
      r = perr(&p, "unknown key '%s'", key);
      break;
    }
    if (seen[i] && keys[i].type != T_LIST) {
      r = perr(&p, "%s given twice", key);
      break;
    }
    seen[i] = 1;
    r = apply(cfg, &p, &keys[i], val);
  }
  if (r == 0) r = resolve(cfg);
  return r;
}

const char *hcsb__shim_config_path(void) {
  const char *env = getenv(HCSB__SHIM_CONFIG_ENV);

  return env != NULL && *env != '\0' ? env : HCSB_SHIM_CONFIG_PATH;
}

int hcsb__shim_config_load(hcsb__shim_config_t *cfg, char *err, size_t errlen) {
  const char *path = hcsb__shim_config_path();
  const char *env = getenv(HCSB__SHIM_CONFIG_ENV);
  int from_env = env != NULL && *env != '\0';
  char *text;
  size_t got;
  int r;

  if (errlen > 0) err[0] = '\0';
  r = hcsb__shim_config_defaults(cfg);
  if (r < 0) return r;
  r = hcsb__shim_read_file(path, FILE_MAX, &text, &got);
  if (r == -ENOENT && !from_env) return 0;
  if (r == -ENOMEM) return r;
  if (r == -EINVAL) {
    snprintf(err, errlen, "%s: not a regular file", path);
    return r;
  }
  if (r == -EFBIG) {
    snprintf(err, errlen, "%s: larger than %u bytes", path, FILE_MAX);
    return r;
  }
  if (r < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(-r));
    return r;
  }
  r = set_str(&cfg->path, path);
  if (r == 0) r = hcsb__shim_config_parse(cfg, path, text, got, err, errlen);
  free(text);
  return r;
}
