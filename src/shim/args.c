/* The shim's command line and socket name (args.h).  No I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "shim/args.h"
#include "shim/sha256.h"

typedef struct flag_s {
  const char *name;
  int is_bool;
  size_t offset;
} flag_t;

#define A(field) offsetof(hcsb__shim_args_t, field)

static const flag_t flags[] = {
    {"namespace", 0, A(ns)},
    {"id", 0, A(id)},
    {"address", 0, A(address)},
    {"publish-binary", 0, A(publish_binary)},
    {"bundle", 0, A(bundle)},
    {"debug", 1, A(debug)},
    {"v", 1, 0},
};

static int bool_value(const char *v, int *out) {
  static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
  static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
  size_t i;

  for (i = 0; i < 6; i++) {
    if (strcmp(v, yes[i]) == 0) return *out = 1, 0;
    if (strcmp(v, no[i]) == 0) return *out = 0, 0;
  }
  return -EINVAL;
}

int hcsb__shim_args_parse(int argc, char **argv, hcsb__shim_args_t *a,
                          char *err, size_t errlen) {
  int i, version = 0;

  memset(a, 0, sizeof(*a));
  a->ns = a->id = a->address = a->publish_binary = "";
  for (i = 1; i < argc; i++) {
    const char *arg = argv[i], *name, *eq, *val = NULL;
    size_t nlen, f;

    if (strcmp(arg, "--") == 0) {
      i++;
      break;
    }
    if (arg[0] != '-' || arg[1] == '\0') break;
    name = arg + 1 + (arg[1] == '-');
    eq = strchr(name, '=');
    nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
    if (eq != NULL) val = eq + 1;
    for (f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
      if (strlen(flags[f].name) == nlen &&
          strncmp(flags[f].name, name, nlen) == 0)
        break;
    if (f == sizeof(flags) / sizeof(flags[0])) {
      snprintf(err, errlen, "flag provided but not defined: %s", arg);
      return -EINVAL;
    }
    if (flags[f].is_bool) {
      int b = 1;
      if (val != NULL && bool_value(val, &b) < 0) {
        snprintf(err, errlen, "invalid boolean value \"%s\" for -%s", val,
                 flags[f].name);
        return -EINVAL;
      }
      if (strcmp(flags[f].name, "v") == 0)
        version = b;
      else
        *(int *)(void *)((char *)a + flags[f].offset) = b;
      continue;
    }
    if (val == NULL) {
      if (i + 1 >= argc) {
        snprintf(err, errlen, "flag needs an argument: -%s", flags[f].name);
        return -EINVAL;
      }
      val = argv[++i];
    }
    *(const char **)(void *)((char *)a + flags[f].offset) = val;
  }
  if (version) {
    a->action = HCSB__SHIM_VERSION;
    return 0;
  }
  if (i >= argc) return 0; /* no action */
  if (strcmp(argv[i], "start") == 0)
    a->action = HCSB__SHIM_START;
  else if (strcmp(argv[i], "delete") == 0)
    a->action = HCSB__SHIM_DELETE;
  else if (strcmp(argv[i], "serve") == 0)
    a->action = HCSB__SHIM_SERVE;
  else {
    snprintf(err, errlen, "unknown action \"%s\" (start or delete)", argv[i]);
    return -EINVAL;
  }
  if (i + 1 < argc) {
    snprintf(err, errlen, "unexpected argument \"%s\" after %s", argv[i + 1],
             argv[i]);
    return -EINVAL;
  }
  return 0;
}

/* Go's filepath.Clean, step for step: w is the output length, dotdot
 * where backing up over ".." must stop. */
int hcsb__shim_path_clean(const char *path, char *out, size_t outlen) {
  size_t n = strlen(path), r = 0, w = 0, dotdot = 0;
  int rooted = n > 0 && path[0] == '/';
  char *buf = malloc(n + 2); /* never longer than the input, or "." */

  if (buf == NULL) return -ENOMEM;
  if (rooted) {
    buf[w++] = '/';
    r = dotdot = 1;
  }
  while (r < n) {
    if (path[r] == '/') {
      r++; /* empty element */
    } else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
      r++; /* "." */
    } else if (path[r] == '.' && path[r + 1] == '.' &&
               (r + 2 == n || path[r + 2] == '/')) {
      r += 2; /* "..": drop the last element if there is one */
      if (w > dotdot) {
        w--;
        while (w > dotdot && buf[w] != '/') w--;
      } else if (!rooted) {
        if (w > 0) buf[w++] = '/';
        buf[w++] = '.';
        buf[w++] = '.';
        dotdot = w;
      }
    } else {
      if ((rooted && w != 1) || (!rooted && w != 0)) buf[w++] = '/';
      for (; r < n && path[r] != '/'; r++) buf[w++] = path[r];
    }
  }
  if (w == 0) buf[w++] = '.';
  buf[w] = '\0';
  if (w + 1 > outlen) {
    free(buf);
    return -ENAMETOOLONG;
  }
  memcpy(out, buf, w + 1);
  free(buf);
  return 0;
}

int hcsb__shim_socket_path(const char *socket_dir, const char *address,
                           const char *ns, const char *id, char *out,
                           size_t outlen) {
  struct sockaddr_un sa;
  size_t n = strlen(address) + strlen(ns) + strlen(id) + 3;
  char *joined = malloc(n), *clean = malloc(n + 1), hex[65];
  int r;

  if (joined == NULL || clean == NULL) {
    free(joined);
    free(clean);
    return -ENOMEM;
  }
  snprintf(joined, n, "%s/%s/%s", address, ns, id);
  r = hcsb__shim_path_clean(joined, clean, n + 1);
  if (r == 0) hcsb__sha256_hex(clean, strlen(clean), hex);
  free(joined);
  free(clean);
  if (r < 0) return r;
  r = snprintf(out, outlen, "%s/%s", socket_dir, hex);
  if (r < 0 || (size_t)r >= outlen || (size_t)r >= sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  return 0;
}
