/* hcsbctl: text buffers, argument and script-line parsing, signal names. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hcsbctl.h"

/* ------------------------------------------------------------------------ */
/* Text buffer.  Out of memory is fatal: a command-line tool has nothing
 * better to do, and every caller stays simple. */

static void buf_reserve(ctl_buf_t *b, size_t more) {
  if (b->len + more + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more + 1) cap *= 2;
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    fputs("hcsbctl: out of memory\n", stderr);
    exit(CTL_EXIT_FAILED);
  }
  b->data = p;
  b->cap = cap;
}

void ctl_buf_append(ctl_buf_t *b, const char *s, size_t len) {
  buf_reserve(b, len);
  memcpy(b->data + b->len, s, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void ctl_buf_vprintf(ctl_buf_t *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n <= 0) return;
  buf_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void ctl_buf_printf(ctl_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ctl_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void ctl_buf_json_str(ctl_buf_t *b, const char *s) {
  ctl_buf_append(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    switch (*p) {
      case '"':
        ctl_buf_append(b, "\\\"", 2);
        break;
      case '\\':
        ctl_buf_append(b, "\\\\", 2);
        break;
      case '\n':
        ctl_buf_append(b, "\\n", 2);
        break;
      case '\r':
        ctl_buf_append(b, "\\r", 2);
        break;
      case '\t':
        ctl_buf_append(b, "\\t", 2);
        break;
      default:
        if (*p < 0x20)
          ctl_buf_printf(b, "\\u%04x", *p);
        else
          ctl_buf_append(b, (const char *)p, 1);
    }
  }
  ctl_buf_append(b, "\"", 1);
}

void ctl_buf_free(ctl_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Signals.  The numbers are the Linux guest's (generic ABI, x86 and arm64),
 * not whatever this host uses, since they are sent to the guest. */

static const struct {
  const char *name;
  int num;
} signals[] = {
    {"HUP", 1},   {"INT", 2},     {"QUIT", 3},  {"ILL", 4},    {"TRAP", 5},
    {"ABRT", 6},  {"IOT", 6},     {"BUS", 7},   {"FPE", 8},    {"KILL", 9},
    {"USR1", 10}, {"SEGV", 11},   {"USR2", 12}, {"PIPE", 13},  {"ALRM", 14},
    {"TERM", 15}, {"STKFLT", 16}, {"CHLD", 17}, {"CONT", 18},  {"STOP", 19},
    {"TSTP", 20}, {"TTIN", 21},   {"TTOU", 22}, {"URG", 23},   {"XCPU", 24},
    {"XFSZ", 25}, {"VTALRM", 26}, {"PROF", 27}, {"WINCH", 28}, {"IO", 29},
    {"POLL", 29}, {"PWR", 30},    {"SYS", 31},
};

int ctl_parse_signal(const char *s) {
  uint32_t n;
  if (ctl_parse_u32(s, &n) == 0) return n >= 1 && n <= 64 ? (int)n : -1;
  if (strncasecmp(s, "SIG", 3) == 0) s += 3;
  for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
    if (strcasecmp(s, signals[i].name) == 0) return signals[i].num;
  return -1;
}

const char *ctl_signal_name(int signum) {
  for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
    if (signals[i].num == signum) return signals[i].name;
  return NULL;
}

int ctl_parse_u32(const char *s, uint32_t *out) {
  if (s == NULL || !isdigit((unsigned char)*s)) return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > UINT32_MAX) return -1;
  *out = (uint32_t)v;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Script lines */

int ctl_split_words(char *line, char ***argv_out, const char **err) {
  size_t cap = 8, n = 0;
  char **argv = malloc(cap * sizeof(*argv));
  char *r = line, *w = line;
  if (argv == NULL) goto oom;
  for (;;) {
    while (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n') r++;
    if (*r == '\0' || *r == '#') break;
    if (n + 2 > cap) {
      char **p = realloc(argv, (cap *= 2) * sizeof(*argv));
      if (p == NULL) goto oom;
      argv = p;
    }
    argv[n++] = w;
    /* Words are rewritten in place: unquoting only ever shortens them. */
    while (*r && *r != ' ' && *r != '\t' && *r != '\r' && *r != '\n') {
      if (*r == '\'') {
        char *end = strchr(r + 1, '\'');
        if (end == NULL) goto unterminated;
        memmove(w, r + 1, (size_t)(end - r - 1));
        w += end - r - 1;
        r = end + 1;
      } else if (*r == '"') {
        for (r++;; r++) {
          if (*r == '\0') goto unterminated;
          if (*r == '"') break;
          if (*r == '\\' && r[1] && strchr("\"\\$`", r[1])) r++;
          *w++ = *r;
        }
        r++;
      } else if (*r == '\\' && r[1]) {
        *w++ = r[1];
        r += 2;
      } else {
        *w++ = *r++;
      }
    }
    /* Terminate the word; `r` may share the byte, so step past it first. */
    int at_end = *r == '\0';
    if (!at_end) r++;
    *w++ = '\0';
    if (at_end) break;
  }
  argv[n] = NULL;
  *argv_out = argv;
  return (int)n;

unterminated:
  free(argv);
  *err = "unterminated quote";
  return -1;
oom:
  free(argv);
  *err = "out of memory";
  return -1;
}

int ctl_read_file(const char *path, size_t max, char **out, size_t *len_out) {
  int fd =
      strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t cap = 4096, len = 0;
  char *data = malloc(cap);
  int rc = 0;
  if (data == NULL) rc = -ENOMEM;
  while (rc == 0) {
    if (len + 1 >= cap) {
      if (cap > max) {
        rc = -EFBIG;
        break;
      }
      char *p = realloc(data, cap * 2);
      if (p == NULL) {
        rc = -ENOMEM;
        break;
      }
      data = p;
      cap *= 2;
    }
    ssize_t n = read(fd, data + len, cap - len - 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) rc = -errno;
    if (n <= 0) break;
    len += (size_t)n;
  }
  if (rc == 0 && len > max) rc = -EFBIG;
  if (fd != STDIN_FILENO) close(fd);
  if (rc != 0) {
    free(data);
    return rc;
  }
  data[len] = '\0';
  *out = data;
  if (len_out) *len_out = len;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Options */

int ctl_args_init(ctl_args_t *a, const char *cmd, int argc, char **argv,
                  int stop_after) {
  memset(a, 0, sizeof(*a));
  a->cmd = cmd;
  a->argc = argc;
  a->argv = argv;
  a->ind = 1;
  a->stop_after = stop_after;
  a->operands = calloc((size_t)argc + 1, sizeof(*a->operands));
  return a->operands ? 0 : -ENOMEM;
}

void ctl_args_free(ctl_args_t *a) {
  free(a->operands);
  a->operands = NULL;
}

static const ctl_opt_t *find_long(const ctl_opt_t *opts, const char *name,
                                  size_t len) {
  for (; opts->name; opts++)
    if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
      return opts;
  return NULL;
}

static const ctl_opt_t *find_short(const ctl_opt_t *opts, char c) {
  for (; opts->name; opts++)
    if (opts->short_name == c) return opts;
  return NULL;
}

/* Everything from index `from` on is an operand. */
static void take_rest(ctl_args_t *a, int from) {
  for (int i = from; i < a->argc; i++) a->operands[a->noperands++] = a->argv[i];
  a->ind = a->argc;
}

int ctl_getopt(ctl_t *ctl, ctl_args_t *a, const ctl_opt_t *opts,
               const char **arg) {
  *arg = NULL;
  if (a->cluster) {
    char c = *a->cluster++;
    const ctl_opt_t *o = find_short(opts, c);
    if (o == NULL)
      return ctl_usage_error(ctl, a->cmd, "unknown option '-%c'", c), -2;
    if (o->has_arg) {
      /* "-eK=V" or "-e K=V" */
      if (*a->cluster) {
        *arg = a->cluster;
      } else if (a->ind < a->argc) {
        *arg = a->argv[a->ind++];
      } else {
        return ctl_usage_error(ctl, a->cmd, "option '-%c' needs a value", c),
               -2;
      }
      a->cluster = NULL;
    } else if (*a->cluster == '\0') {
      a->cluster = NULL;
    }
    return o->id;
  }
  for (;;) {
    if (a->ind >= a->argc) return 0;
    if (a->stop_after && a->noperands >= a->stop_after) {
      take_rest(a, a->ind);
      return 0;
    }
    const char *s = a->argv[a->ind];
    if (strcmp(s, "--") == 0) {
      take_rest(a, a->ind + 1);
      return 0;
    }
    if (s[0] != '-' || s[1] == '\0') {
      a->operands[a->noperands++] = a->argv[a->ind++];
      continue;
    }
    a->ind++;
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) return -1;
    if (s[1] != '-') {
      a->cluster = s + 1;
      return ctl_getopt(ctl, a, opts, arg);
    }
    const char *name = s + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const ctl_opt_t *o = find_long(opts, name, len);
    if (o == NULL)
      return ctl_usage_error(ctl, a->cmd, "unknown option '--%.*s'", (int)len,
                             name),
             -2;
    if (!o->has_arg && eq)
      return ctl_usage_error(ctl, a->cmd, "option '--%s' takes no value",
                             o->name),
             -2;
    if (o->has_arg) {
      if (eq) {
        *arg = eq + 1;
      } else if (a->ind < a->argc) {
        *arg = a->argv[a->ind++];
      } else {
        return ctl_usage_error(ctl, a->cmd, "option '--%s' needs a value",
                               o->name),
               -2;
      }
    }
    return o->id;
  }
}
