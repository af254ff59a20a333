/* OCI spec adaptation for the guest (the table is in spec.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "shim/spec.h"

#define ANN_TYPE "io.kubernetes.cri.container-type"
#define ANN_SANDBOX "io.kubernetes.cri.sandbox-id"

typedef struct adapt_s {
  const hcsb__spec_ctx_t *ctx;
  const char *err;
} adapt_t;

static void note(adapt_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(adapt_t *a, const char *fmt, ...) {
  char line[512];
  va_list ap;

  if (a->ctx->note == NULL) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  a->ctx->note(a->ctx->note_data, line);
}

static int parse(const char *text, size_t len, json_object **out,
                 const char **err) {
  json_tokener *tok;
  json_object *o;

  *out = NULL;
  if (len > HCSB__SPEC_MAX_BYTES) {
    *err = "spec larger than 4 MiB";
    return -E2BIG;
  }
  tok = json_tokener_new_ex(HCSB__SPEC_MAX_DEPTH);
  if (tok == NULL) return -ENOMEM;
  o = json_tokener_parse_ex(tok, text, (int)len);
  if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
      tok->char_offset != (int)len) {
    /* A trailing NUL or whitespace after the object is fine. */
    size_t i = o != NULL ? (size_t)tok->char_offset : len;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' ||
                       text[i] == '\t' || text[i] == '\0'))
      i++;
    if (o == NULL || i != len) {
      json_object_put(o);
      json_tokener_free(tok);
      *err = "spec is not valid JSON";
      return -EINVAL;
    }
  }
  json_tokener_free(tok);
  if (!json_object_is_type(o, json_type_object)) {
    json_object_put(o);
    *err = "spec is not a JSON object";
    return -EINVAL;
  }
  *out = o;
  return 0;
}

/* The member `key` of `o` when it is of `type`; NULL when absent or null;
 * -EINVAL through *r when present with another type. */
static json_object *member(json_object *o, const char *key, json_type type,
                           int *r, adapt_t *a) {
  json_object *v = NULL;

  if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
    return NULL;
  if (!json_object_is_type(v, type)) {
    *r = -EINVAL;
    a->err = "a spec member has the wrong type";
    return NULL;
  }
  return v;
}

static void drop(adapt_t *a, json_object *o, const char *key, const char *where,
                 const char *why) {
  if (o != NULL && json_object_object_get_ex(o, key, NULL)) {
    json_object_object_del(o, key);
    note(a, "removed %s%s: %s", where, key, why);
  }
}

static int has_option(json_object *m, const char *opt, int *r, adapt_t *a) {
  json_object *opts = member(m, "options", json_type_array, r, a);
  size_t i, n = opts != NULL ? json_object_array_length(opts) : 0;

  for (i = 0; i < n; i++) {
    json_object *v = json_object_array_get_idx(opts, i);
    if (v != NULL && json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v), opt) == 0)
      return 1;
  }
  return 0;
}

static int adapt_mounts(adapt_t *a, json_object *spec) {
  int r = 0;
  json_object *mounts = member(spec, "mounts", json_type_array, &r, a);
  json_object *kept;
  size_t i, n;

  if (mounts == NULL) return r;
  kept = json_object_new_array();
  if (kept == NULL) return -ENOMEM;
  n = json_object_array_length(mounts);
  for (i = 0; i < n; i++) {
    json_object *m = json_object_array_get_idx(mounts, i);
    json_object *type, *dst, *src;
    int bind;
    if (m == NULL || !json_object_is_type(m, json_type_object)) {
      a->err = "a mount is not an object";
      r = -EINVAL;
      break;
    }
    type = member(m, "type", json_type_string, &r, a);
    dst = member(m, "destination", json_type_string, &r, a);
    src = member(m, "source", json_type_string, &r, a);
    if (r != 0) break;
    bind = (type != NULL && strcmp(json_object_get_string(type), "bind") == 0);
    bind =
        bind || has_option(m, "bind", &r, a) || has_option(m, "rbind", &r, a);
    if (r != 0) break;
    if (bind) {
      note(a, "removed mount %s (a bind of the host's %s)",
           dst != NULL ? json_object_get_string(dst) : "?",
           src != NULL ? json_object_get_string(src) : "?");
      continue;
    }
    if (json_object_array_add(kept, json_object_get(m)) != 0) {
      json_object_put(m);
      r = -ENOMEM;
      break;
    }
  }
  if (r == 0 && json_object_array_length(kept) == n) {
    json_object_put(kept); /* nothing removed */
    return 0;
  }
  if (r != 0 || json_object_object_add(spec, "mounts", kept) != 0) {
    json_object_put(kept);
    return r != 0 ? r : -ENOMEM;
  }
  return 0;
}

static int adapt_namespaces(adapt_t *a, json_object *linux_) {
  int r = 0;
  json_object *nss = member(linux_, "namespaces", json_type_array, &r, a);
  size_t i, n = nss != NULL ? json_object_array_length(nss) : 0;

  for (i = 0; r == 0 && i < n; i++) {
    json_object *ns = json_object_array_get_idx(nss, i), *type, *path;
    const char *t, *guest = NULL;
    char buf[64];
    if (ns == NULL || !json_object_is_type(ns, json_type_object)) {
      a->err = "a namespace is not an object";
      return -EINVAL;
    }
    type = member(ns, "type", json_type_string, &r, a);
    path = member(ns, "path", json_type_string, &r, a);
    if (r != 0) return r;
    if (path == NULL || json_object_get_string_len(path) == 0) continue;
    t = type != NULL ? json_object_get_string(type) : "";
    if (a->ctx->sandbox_pid != 0) {
      if (strcmp(t, "network") == 0)
        guest = "net";
      else if (strcmp(t, "ipc") == 0 || strcmp(t, "uts") == 0 ||
               strcmp(t, "pid") == 0)
        guest = t;
    }
    if (guest != NULL) {
      json_object *v;
      snprintf(buf, sizeof buf, "/proc/%u/ns/%s", (unsigned)a->ctx->sandbox_pid,
               guest);
      note(a, "%s namespace: the pod sandbox's %s instead of the host's %s", t,
           buf, json_object_get_string(path));
      v = json_object_new_string(buf);
      if (v == NULL || json_object_object_add(ns, "path", v) != 0) {
        json_object_put(v);
        return -ENOMEM;
      }
    } else {
      note(a, "%s namespace: a new one instead of the host's %s", t,
           json_object_get_string(path));
      json_object_object_del(ns, "path");
    }
  }
  return r;
}

static int set_string(json_object *o, const char *key, const char *value) {
  json_object *v = json_object_new_string(value);

  if (v == NULL || json_object_object_add(o, key, v) != 0) {
    json_object_put(v);
    return -ENOMEM;
  }
  return 0;
}

static int adapt_cgroups_path(adapt_t *a, json_object *linux_) {
  int r = 0;
  json_object *v = member(linux_, "cgroupsPath", json_type_string, &r, a);
  const char *p = v != NULL ? json_object_get_string(v) : NULL;
  char buf[300];

  if (r != 0) return r;
  if (p != NULL && p[0] == '/' && strchr(p, ':') == NULL) return 0;
  if (a->ctx->id == NULL || strlen(a->ctx->id) > 256) return 0;
  snprintf(buf, sizeof buf, "/hcsb/%s", a->ctx->id);
  if (p != NULL && p[0] != '\0')
    note(a, "cgroupsPath %s is no cgroupfs path in the guest: %s", p, buf);
  return set_string(linux_, "cgroupsPath", buf);
}

static int adapt(adapt_t *a, json_object *spec) {
  static const char *const platforms[] = {"windows", "solaris", "vm", "zos"};
  json_object *process, *linux_, *root, *resources;
  size_t i;
  int r = 0;

  for (i = 0; i < sizeof platforms / sizeof platforms[0]; i++)
    drop(a, spec, platforms[i], "", "another platform's section");
  drop(a, spec, "hooks", "",
       "hooks are host programs, the utility VM cannot run them");
  process = member(spec, "process", json_type_object, &r, a);
  linux_ = member(spec, "linux", json_type_object, &r, a);
  root = member(spec, "root", json_type_object, &r, a);
  if (r != 0) return r;
  drop(a, process, "apparmorProfile", "process.",
       "the guest has no AppArmor policy");
  drop(a, process, "selinuxLabel", "process.",
       "the guest has no SELinux policy");
  drop(a, linux_, "mountLabel", "linux.", "the guest has no SELinux policy");
  drop(a, linux_, "intelRdt", "linux.", "host hardware");
  resources = member(linux_, "resources", json_type_object, &r, a);
  if (r != 0) return r;
  drop(a, resources, "unified", "linux.resources.",
       "cgroup v2 keys; the guest's containers use cgroup v1");
  r = adapt_mounts(a, spec);
  if (r == 0 && linux_ != NULL) r = adapt_namespaces(a, linux_);
  if (r == 0 && linux_ != NULL) r = adapt_cgroups_path(a, linux_);
  if (r == 0 && a->ctx->root_path != NULL) {
    if (root == NULL) {
      root = json_object_new_object();
      if (root == NULL || json_object_object_add(spec, "root", root) != 0) {
        json_object_put(root);
        return -ENOMEM;
      }
    }
    r = set_string(root, "path", a->ctx->root_path);
  }
  return r;
}

int hcsb__spec_adapt(const char *text, size_t len, const hcsb__spec_ctx_t *ctx,
                     char **out, const char **err) {
  adapt_t a = {ctx, NULL};
  json_object *spec;
  const char *s;
  int r;

  *out = NULL;
  r = parse(text, len, &spec, &a.err);
  if (r == 0) r = adapt(&a, spec);
  if (r == 0) {
    s = json_object_to_json_string_ext(
        spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    *out = s != NULL ? strdup(s) : NULL;
    if (*out == NULL) r = -ENOMEM;
  }
  json_object_put(spec);
  if (r != 0 && err != NULL)
    *err = a.err != NULL ? a.err : r == -ENOMEM ? "out of memory" : "bad spec";
  return r;
}

int hcsb__spec_pod_role(const char *text, size_t len, hcsb__pod_role_t *role,
                        char *sandbox_id, size_t idlen) {
  hcsb__spec_ctx_t ctx;
  adapt_t a = {&ctx, NULL};
  json_object *spec, *ann, *type, *sid;
  int r;

  memset(&ctx, 0, sizeof(ctx));
  *role = HCSB__POD_NONE;
  if (idlen > 0) sandbox_id[0] = '\0';
  r = parse(text, len, &spec, &a.err);
  if (r != 0) return r == -E2BIG ? -EINVAL : r;
  ann = member(spec, "annotations", json_type_object, &r, &a);
  type = member(ann, ANN_TYPE, json_type_string, &r, &a);
  sid = member(ann, ANN_SANDBOX, json_type_string, &r, &a);
  if (r == 0 && type != NULL) {
    const char *t = json_object_get_string(type);
    if (strcmp(t, "sandbox") == 0) {
      *role = HCSB__POD_SANDBOX;
    } else if (strcmp(t, "container") == 0) {
      *role = HCSB__POD_MEMBER;
      if (sid == NULL || json_object_get_string_len(sid) == 0 ||
          (size_t)json_object_get_string_len(sid) >= idlen)
        r = -EINVAL;
      else
        memcpy(sandbox_id, json_object_get_string(sid),
               (size_t)json_object_get_string_len(sid) + 1);
    } else {
      r = -EINVAL;
    }
  }
  json_object_put(spec);
  if (r != 0) *role = HCSB__POD_NONE;
  return r;
}

int hcsb__spec_terminal(const char *text, size_t len) {
  hcsb__spec_ctx_t ctx;
  adapt_t a = {&ctx, NULL};
  json_object *spec, *process, *t;
  int r;

  memset(&ctx, 0, sizeof(ctx));
  r = parse(text, len, &spec, &a.err);
  if (r != 0) return r == -E2BIG ? -EINVAL : r;
  process = member(spec, "process", json_type_object, &r, &a);
  t = member(process, "terminal", json_type_boolean, &r, &a);
  if (r == 0) r = t != NULL && json_object_get_boolean(t);
  json_object_put(spec);
  return r;
}

int hcsb__spec_adapt_process(const char *text, size_t len, unsigned width,
                             unsigned height, char **out, const char **err) {
  hcsb__spec_ctx_t ctx;
  adapt_t a = {&ctx, NULL};
  json_object *o, *size = NULL;
  const char *s;
  int r;

  memset(&ctx, 0, sizeof(ctx));
  *out = NULL;
  r = parse(text, len, &o, &a.err);
  if (r != 0) {
    *err = a.err != NULL ? a.err : "the process is not a JSON object";
    return r;
  }
  drop(&a, o, "apparmorProfile", "process.", "");
  drop(&a, o, "selinuxLabel", "process.", "");
  if (width != 0 || height != 0) {
    size = json_object_new_object();
    r = size != NULL &&
                json_object_object_add(size, "height",
                                       json_object_new_int64(height)) == 0 &&
                json_object_object_add(size, "width",
                                       json_object_new_int64(width)) == 0 &&
                json_object_object_add(o, "consoleSize", size) == 0
            ? 0
            : -ENOMEM;
    if (r != 0) json_object_put(size);
  }
  s = r == 0 ? json_object_to_json_string_ext(
                   o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
             : NULL;
  *out = s != NULL ? strdup(s) : NULL;
  json_object_put(o);
  if (*out == NULL) {
    *err = "out of memory";
    return -ENOMEM;
  }
  return 0;
}
