/* The OCI spec runc gets, adapted from the host's as the v0.11.8 GCS does
 * for a standalone container (hcsv2 setupStandaloneContainerSpec): the
 * container's /etc/hostname, /etc/hosts and /etc/resolv.conf are files in
 * the container's root directory (/run/gcs/c/<id>) bind-mounted over the
 * rootfs's, unless the spec mounts something there itself; its cgroup is
 * /containers/<id>; the Windows section goes.  Nothing else is touched:
 * namespaces, mounts and the process are the host's business, as with
 * the GCS.  An exec's process.json gets the container's rlimits and user.
 *
 * resolv.conf is written empty: the GCS fills it from the network
 * adapters of the spec's namespace, and this VM has none. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "guest/act.h"

static const char *const etc_files[3][2] = {
    {"/etc/hostname", "hostname"},
    {"/etc/hosts", "hosts"},
    {"/etc/resolv.conf", "resolv.conf"}};

/* The spec's mounts array, created when absent; NULL when it is not an
 * array. */
static json_object *mounts_of(json_object *spec, int create) {
  json_object *m = hcsb__json_get(spec, "mounts");

  if (m == NULL && create) {
    m = json_object_new_array();
    if (m == NULL || json_object_object_add(spec, "mounts", m) != 0)
      return NULL;
  }
  return json_object_is_type(m, json_type_array) ? m : NULL;
}

static int mount_present(json_object *mounts, const char *dest) {
  size_t i, n = mounts != NULL ? json_object_array_length(mounts) : 0;

  for (i = 0; i < n; i++) {
    json_object *d =
        hcsb__json_get(json_object_array_get_idx(mounts, i), "destination");
    if (json_object_is_type(d, json_type_string) &&
        strcmp(json_object_get_string(d), dest) == 0)
      return 1;
  }
  return 0;
}

static int root_readonly(json_object *spec) {
  json_object *root = hcsb__json_get(spec, "root");
  json_object *ro = root != NULL ? hcsb__json_get(root, "readonly") : NULL;
  return json_object_is_type(ro, json_type_boolean) &&
         json_object_get_boolean(ro);
}

static int add_bind(json_object *mounts, const char *dest, const char *src,
                    int ro) {
  json_object *m = json_object_new_object(), *opts = json_object_new_array();

  if (m == NULL || opts == NULL) goto fail;
  if (json_object_object_add(m, "destination", json_object_new_string(dest)) ||
      json_object_object_add(m, "type", json_object_new_string("bind")) ||
      json_object_object_add(m, "source", json_object_new_string(src)) ||
      json_object_array_add(opts, json_object_new_string("bind")) ||
      (ro && json_object_array_add(opts, json_object_new_string("ro"))))
    goto fail;
  if (json_object_object_add(m, "options", opts) != 0) goto fail;
  opts = NULL;
  if (json_object_array_add(mounts, m) != 0) goto fail;
  return 0;
fail:
  json_object_put(opts);
  json_object_put(m);
  return -ENOMEM;
}

int hcsb__gspec_adapt(json_object *spec, const char *id, const char *rootdir,
                      unsigned *files) {
  json_object *mounts, *linux_, *v;
  char src[4200], cg[300];
  int ro, i;

  *files = 0;
  if (!json_object_is_type(spec, json_type_object)) return -EINVAL;
  v = hcsb__json_get(spec, "mounts");
  if (v != NULL && !json_object_is_type(v, json_type_array)) return -EINVAL;
  linux_ = hcsb__json_get(spec, "linux");
  if (linux_ != NULL && !json_object_is_type(linux_, json_type_object))
    return -EINVAL;
  if (strlen(id) > 255) return -EINVAL;

  mounts = mounts_of(spec, 1);
  if (mounts == NULL) return -ENOMEM;
  ro = root_readonly(spec);
  for (i = 0; i < 3; i++) {
    if (mount_present(mounts, etc_files[i][0])) continue;
    snprintf(src, sizeof src, "%s/%s", rootdir, etc_files[i][1]);
    if (add_bind(mounts, etc_files[i][0], src, ro) != 0) return -ENOMEM;
    *files |= 1u << i;
  }

  if (linux_ == NULL) {
    linux_ = json_object_new_object();
    if (linux_ == NULL || json_object_object_add(spec, "linux", linux_) != 0)
      return -ENOMEM;
  }
  snprintf(cg, sizeof cg, "%s%s", HCSB__GA_CGROUP_PARENT, id);
  if (json_object_object_add(linux_, "cgroupsPath",
                             json_object_new_string(cg)) != 0)
    return -ENOMEM;
  json_object_object_del(spec, "windows");
  return 0;
}

int hcsb__gspec_hostname(json_object *spec, char *out, size_t size) {
  json_object *v = hcsb__json_get(spec, "hostname");
  struct utsname u;

  if (json_object_is_type(v, json_type_string) &&
      json_object_get_string(v)[0] != '\0') {
    snprintf(out, size, "%s", json_object_get_string(v));
    return 0;
  }
  if (uname(&u) < 0) return -errno;
  snprintf(out, size, "%s", u.nodename);
  return 0;
}

char *hcsb__gspec_hostname_text(const char *hostname) {
  char *s = NULL;
  return asprintf(&s, "%s\n", hostname) < 0 ? NULL : s;
}

char *hcsb__gspec_hosts_text(const char *hostname) {
  const char *dot = strchr(hostname, '.');
  char *s = NULL;
  int r;

  /* A dotted name is listed with its first label too. */
  if (dot != NULL)
    r = asprintf(&s, "127.0.0.1 localhost\n127.0.0.1 %s %.*s\n", hostname,
                 (int)(dot - hostname), hostname);
  else
    r = asprintf(&s, "127.0.0.1 localhost\n127.0.0.1 %s\n", hostname);
  if (r < 0) return NULL;
  {
    static const char v6[] =
        "\n# The following lines are desirable for IPv6 capable hosts\n"
        "::1     ip6-localhost ip6-loopback\n"
        "fe00::0 ip6-localnet\n"
        "ff00::0 ip6-mcastprefix\n"
        "ff02::1 ip6-allnodes\n"
        "ff02::2 ip6-allrouters\n";
    char *t = NULL;
    r = asprintf(&t, "%s%s", s, v6);
    free(s);
    return r < 0 ? NULL : t;
  }
}

int hcsb__gspec_rootfs(json_object *spec, const char *bundle, char *out,
                       size_t size) {
  json_object *root = hcsb__json_get(spec, "root");
  json_object *p = root != NULL ? hcsb__json_get(root, "path") : NULL;
  const char *path;
  int n;

  if (!json_object_is_type(p, json_type_string)) return -EINVAL;
  path = json_object_get_string(p);
  if (path[0] == '\0') return -EINVAL;
  n = path[0] == '/' ? snprintf(out, size, "%s", path)
                     : snprintf(out, size, "%s/%s", bundle, path);
  return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

json_object *hcsb__gspec_exec_process(json_object *proc, json_object *spec) {
  json_object *p = NULL, *sp = hcsb__json_get(spec, "process"), *v, *u;

  if (json_object_deep_copy(proc, &p, NULL) != 0) return NULL;
  if (sp == NULL) return p;
  /* The container's rlimits apply to its execs (core dumps, say). */
  v = hcsb__json_get(sp, "rlimits");
  json_object_object_del(p, "rlimits");
  if (v != NULL && json_object_object_add(p, "rlimits", json_object_get(v))) {
    json_object_put(v);
    json_object_put(p);
    return NULL;
  }
  /* An exec that names no user runs as the container's named user. */
  u = hcsb__json_get(p, "user");
  v = u != NULL ? hcsb__json_get(u, "username") : NULL;
  if (v == NULL || !json_object_is_type(v, json_type_string) ||
      json_object_get_string(v)[0] == '\0') {
    json_object *su = hcsb__json_get(sp, "user");
    json_object *sn = su != NULL ? hcsb__json_get(su, "username") : NULL;
    if (json_object_is_type(sn, json_type_string) &&
        json_object_get_string(sn)[0] != '\0') {
      json_object_object_del(p, "user");
      if (json_object_object_add(p, "user", json_object_get(su)) != 0) {
        json_object_put(su);
        json_object_put(p);
        return NULL;
      }
    }
  }
  return p;
}

int hcsb__gspec_write(const char *path, const char *text, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), r = 0;
  size_t off = 0;
  ssize_t n;

  if (fd < 0) return -errno;
  while (off < len) {
    n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      r = n < 0 ? -errno : -EIO;
      break;
    }
    off += (size_t)n;
  }
  if (close(fd) < 0 && r == 0) r = -errno;
  return r;
}
