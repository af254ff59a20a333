/* The shim's Task side without containerd: the process state machine, the
 * spec adaptation, the rootfs plan and the layer image
 * cache. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <uv.h>

#include <hcsbridge/common.h>

#include "runner.h"
#include "shim/proc.h"
#include "shim/readfile.h"
#include "shim/rootfs.h"
#include "shim/spec.h"

/* ------------------------------------------------------------------------ */
/* The state machine */

typedef struct expect_s {
  hcsb__pstate_t from;
  hcsb__pop_t op;
  int err;             /* 0 allowed */
  hcsb__pstate_t next; /* when allowed */
} expect_t;

#define A(f, o, n) \
  { HCSB__PS_##f, HCSB__POP_##o, 0, HCSB__PS_##n }
#define R(f, o, e) \
  { HCSB__PS_##f, HCSB__POP_##o, -e, HCSB__PS_##f }

/* The whole table, written out independently of proc.c. */
static const expect_t expected[] = {
    A(CREATED, START, STARTING),
    R(CREATED, STARTED, EBUSY),
    R(CREATED, START_FAILED, EBUSY),
    A(CREATED, KILL, STOPPED),
    A(CREATED, RESIZE, CREATED),
    A(CREATED, CLOSEIO, CREATED),
    R(CREATED, EXEC, EBUSY),
    A(CREATED, QUERY, CREATED),
    R(CREATED, EXITED, EBUSY),
    A(CREATED, DELETE, DELETED),
    R(STARTING, START, EBUSY),
    A(STARTING, STARTED, RUNNING),
    A(STARTING, START_FAILED, CREATED),
    A(STARTING, KILL, STARTING),
    A(STARTING, RESIZE, STARTING),
    A(STARTING, CLOSEIO, STARTING),
    R(STARTING, EXEC, EBUSY),
    A(STARTING, QUERY, STARTING),
    A(STARTING, EXITED, STOPPED),
    R(STARTING, DELETE, EBUSY),
    R(RUNNING, START, EBUSY),
    R(RUNNING, STARTED, EBUSY),
    R(RUNNING, START_FAILED, EBUSY),
    A(RUNNING, KILL, RUNNING),
    A(RUNNING, RESIZE, RUNNING),
    A(RUNNING, CLOSEIO, RUNNING),
    A(RUNNING, EXEC, RUNNING),
    A(RUNNING, QUERY, RUNNING),
    A(RUNNING, EXITED, STOPPED),
    R(RUNNING, DELETE, EBUSY),
    R(STOPPED, START, EBUSY),
    R(STOPPED, STARTED, EBUSY),
    R(STOPPED, START_FAILED, EBUSY),
    R(STOPPED, KILL, ENOENT),
    R(STOPPED, RESIZE, EBUSY),
    A(STOPPED, CLOSEIO, STOPPED),
    R(STOPPED, EXEC, EBUSY),
    R(STOPPED, QUERY, EBUSY),
    R(STOPPED, EXITED, EALREADY),
    A(STOPPED, DELETE, DELETED),
    R(DELETED, START, ENOENT),
    R(DELETED, STARTED, ENOENT),
    R(DELETED, START_FAILED, ENOENT),
    R(DELETED, KILL, ENOENT),
    R(DELETED, RESIZE, ENOENT),
    R(DELETED, CLOSEIO, ENOENT),
    R(DELETED, EXEC, ENOENT),
    R(DELETED, QUERY, ENOENT),
    R(DELETED, EXITED, EALREADY),
    R(DELETED, DELETE, ENOENT),
};

static void test_proc_table(void) {
  size_t i;

  CHECK_EQ(sizeof expected / sizeof expected[0],
           (size_t)HCSB__PS_COUNT * HCSB__POP_COUNT);
  for (i = 0; i < sizeof expected / sizeof expected[0]; i++) {
    const expect_t *e = &expected[i];
    hcsb__proc_t p;
    const char *msg = NULL;
    int r;

    hcsb__proc_init(&p);
    p.state = e->from;
    r = hcsb__proc_check(&p, e->op, &msg);
    if (r != e->err)
      hcsb_test_fail(__FILE__, __LINE__, "%s in %s: %d, expected %d",
                     hcsb__pop_name(e->op), hcsb__pstate_name(e->from), r,
                     e->err);
    CHECK_EQ(p.state, e->from); /* check changes nothing */
    r = hcsb__proc_apply(&p, e->op, 7, &msg);
    CHECK_EQ(r, e->err);
    if (r != 0) {
      CHECK(msg != NULL && msg[0] != '\0');
      CHECK_EQ(p.state, e->from);
    } else if (p.state != e->next) {
      hcsb_test_fail(__FILE__, __LINE__, "%s in %s went to %s, expected %s",
                     hcsb__pop_name(e->op), hcsb__pstate_name(e->from),
                     hcsb__pstate_name(p.state), hcsb__pstate_name(e->next));
    }
  }
}

static void test_proc_life(void) {
  hcsb__proc_t p;
  const char *msg;
  struct timespec at;

  hcsb__proc_init(&p);
  CHECK_EQ(hcsb__pstate_task_status(p.state), 1);
  CHECK_EQ(hcsb__proc_apply(&p, HCSB__POP_START, 0, &msg), 0);
  CHECK_EQ(hcsb__pstate_task_status(p.state), 1);
  CHECK_EQ(hcsb__proc_apply(&p, HCSB__POP_STARTED, 4242, &msg), 0);
  CHECK_EQ(p.pid, 4242);
  CHECK_EQ(hcsb__pstate_task_status(p.state), 2);
  CHECK_EQ(p.exited_at.tv_sec, 0);
  CHECK_EQ(hcsb__proc_apply(&p, HCSB__POP_EXITED, 3, &msg), 0);
  CHECK_EQ(p.exit_status, 3);
  CHECK(p.exited_at.tv_sec > 1000000000);
  at = p.exited_at;
  /* A second exit is refused and changes nothing: exits count once. */
  CHECK_EQ(hcsb__proc_apply(&p, HCSB__POP_EXITED, 9, &msg), -EALREADY);
  CHECK_EQ(p.exit_status, 3);
  CHECK_EQ(p.exited_at.tv_nsec, at.tv_nsec);
  CHECK_EQ(hcsb__proc_apply(&p, HCSB__POP_KILL, 0, &msg), -ENOENT);
  CHECK_STR(msg, "process already finished");
  CHECK_EQ(hcsb__pstate_task_status(p.state), 3);
  CHECK_EQ(hcsb__proc_apply(&p, HCSB__POP_DELETE, 0, &msg), 0);
  CHECK_STR(hcsb__pstate_name(p.state), "deleted");
  CHECK_EQ(hcsb__pstate_task_status(p.state), 3);
  CHECK_EQ(hcsb__proc_check(&p, (hcsb__pop_t)99, &msg), -EINVAL);

  /* Killed before it started: stopped with the status given. */
  hcsb__proc_init(&p);
  CHECK_EQ(hcsb__proc_apply(&p, HCSB__POP_KILL, 137, &msg), 0);
  CHECK_STR(hcsb__pstate_name(p.state), "stopped");
  CHECK_EQ(p.exit_status, 137);
  CHECK_EQ(p.pid, 0);
}

/* ------------------------------------------------------------------------ */
/* Spec adaptation */

static const char cri_spec[] =
    "{\"ociVersion\":\"1.0.2-dev\","
    "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"terminal\":true,"
    "\"apparmorProfile\":\"cri-containerd.apparmor.d\","
    "\"selinuxLabel\":\"x\"},"
    "\"root\":{\"path\":\"rootfs\",\"readonly\":false},"
    "\"hostname\":\"pod1\","
    "\"hooks\":{\"prestart\":[{\"path\":\"/usr/bin/true\"}]},"
    "\"windows\":{\"network\":{\"networkNamespace\":\"ns\"}},"
    "\"mounts\":["
    "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":"
    "\"/var/lib/containerd/hosts\",\"options\":[\"rbind\",\"ro\"]},"
    "{\"destination\":\"/dev/shm\",\"source\":\"/run/sandbox/shm\","
    "\"options\":[\"rbind\"]},"
    "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\","
    "\"options\":[\"nosuid\",\"newinstance\"]}],"
    "\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\","
    "\"io.kubernetes.cri.sandbox-id\":\"sb1\"},"
    "\"linux\":{\"cgroupsPath\":\"kubepods-besteffort.slice:cri:c1\","
    "\"mountLabel\":\"y\",\"intelRdt\":{\"closID\":\"a\"},"
    "\"resources\":{\"unified\":{\"memory.max\":\"1\"},"
    "\"memory\":{\"limit\":1048576}},"
    "\"namespaces\":[{\"type\":\"pid\"},"
    "{\"type\":\"network\",\"path\":\"/var/run/netns/cni-1\"},"
    "{\"type\":\"ipc\",\"path\":\"/proc/77/ns/ipc\"},"
    "{\"type\":\"uts\",\"path\":\"/proc/77/ns/uts\"},"
    "{\"type\":\"mount\"}]}}";

typedef struct notes_s {
  char text[4096];
  int n;
} notes_t;

static void on_note(void *data, const char *note) {
  notes_t *n = data;
  size_t len = strlen(n->text);

  snprintf(n->text + len, sizeof n->text - len, "%s\n", note);
  n->n++;
}

static json_object *path(json_object *o, const char *p) {
  char buf[256], *save = NULL, *k;

  snprintf(buf, sizeof buf, "%s", p);
  for (k = strtok_r(buf, ".", &save); k != NULL && o != NULL;
       k = strtok_r(NULL, ".", &save)) {
    json_object *v = NULL;
    if (json_object_is_type(o, json_type_array))
      v = json_object_array_get_idx(o, (size_t)atoi(k));
    else if (!json_object_object_get_ex(o, k, &v))
      v = NULL;
    o = v;
  }
  return o;
}

static const char *pstr(json_object *o, const char *p) {
  json_object *v = path(o, p);
  return v != NULL ? json_object_get_string(v) : NULL;
}

static void test_spec_adapt_pod_member(void) {
  hcsb__spec_ctx_t ctx;
  notes_t notes;
  json_object *o;
  char *out = NULL;
  const char *err = NULL;

  memset(&ctx, 0, sizeof(ctx));
  memset(&notes, 0, sizeof(notes));
  ctx.id = "c1";
  ctx.root_path = "/run/gcs/c/c1/rootfs";
  ctx.sandbox_pid = 321;
  ctx.note = on_note;
  ctx.note_data = &notes;
  CHECK_EQ(hcsb__spec_adapt(cri_spec, strlen(cri_spec), &ctx, &out, &err), 0);
  o = json_tokener_parse(out);
  CHECK(o != NULL);
  CHECK(path(o, "windows") == NULL);
  CHECK(path(o, "hooks") == NULL);
  CHECK(path(o, "process.apparmorProfile") == NULL);
  CHECK(path(o, "process.selinuxLabel") == NULL);
  CHECK(path(o, "linux.mountLabel") == NULL);
  CHECK(path(o, "linux.intelRdt") == NULL);
  CHECK(path(o, "linux.resources.unified") == NULL);
  CHECK_EQ(json_object_get_int(path(o, "linux.resources.memory.limit")),
           1048576);
  CHECK_STR(pstr(o, "root.path"), "/run/gcs/c/c1/rootfs");
  CHECK_EQ(json_object_get_boolean(path(o, "process.terminal")), 1);
  CHECK_STR(pstr(o, "hostname"), "pod1");
  /* Bind mounts (by type and by option) gone, kernel ones kept in order. */
  CHECK_EQ(json_object_array_length(path(o, "mounts")), 2);
  CHECK_STR(pstr(o, "mounts.0.destination"), "/proc");
  CHECK_STR(pstr(o, "mounts.1.destination"), "/dev/pts");
  CHECK_STR(pstr(o, "mounts.1.options.1"), "newinstance");
  /* The pod's namespaces by the sandbox's guest PID. */
  CHECK(path(o, "linux.namespaces.0.path") == NULL);
  CHECK_STR(pstr(o, "linux.namespaces.1.path"), "/proc/321/ns/net");
  CHECK_STR(pstr(o, "linux.namespaces.2.path"), "/proc/321/ns/ipc");
  CHECK_STR(pstr(o, "linux.namespaces.3.path"), "/proc/321/ns/uts");
  CHECK_STR(pstr(o, "linux.namespaces.4.type"), "mount");
  CHECK_STR(pstr(o, "linux.cgroupsPath"), "/hcsb/c1");
  /* Every change said once. */
  CHECK(strstr(notes.text, "removed hooks") != NULL);
  CHECK(strstr(notes.text, "removed windows") != NULL);
  CHECK(strstr(notes.text,
               "/etc/hosts (a bind of the host's "
               "/var/lib/containerd/hosts)") != NULL);
  CHECK(strstr(notes.text, "/dev/shm") != NULL);
  CHECK(strstr(notes.text, "/var/run/netns/cni-1") != NULL);
  CHECK(strstr(notes.text, "kubepods-besteffort.slice:cri:c1") != NULL);
  CHECK_EQ(notes.n, 13);
  json_object_put(o);
  free(out);
}

static void test_spec_adapt_own(void) {
  static const char spec[] =
      "{\"process\":{\"args\":[\"echo\",\"hi\"]},\"root\":{\"path\":"
      "\"rootfs\"},\"linux\":{\"cgroupsPath\":\"/default/t1\","
      "\"namespaces\":[{\"type\":\"network\",\"path\":\"/var/run/netns/x\"},"
      "{\"type\":\"pid\",\"path\":\"/proc/9/ns/pid\"}]}}";
  hcsb__spec_ctx_t ctx;
  json_object *o;
  char *out = NULL;
  const char *err = NULL;

  memset(&ctx, 0, sizeof(ctx));
  ctx.id = "t1";
  CHECK_EQ(hcsb__spec_adapt(spec, sizeof spec - 1, &ctx, &out, &err), 0);
  o = json_tokener_parse(out);
  /* No sandbox: namespaces of its own; an absolute cgroup path is kept;
   * root.path untouched without a root_path. */
  CHECK(path(o, "linux.namespaces.0.path") == NULL);
  CHECK(path(o, "linux.namespaces.1.path") == NULL);
  CHECK_STR(pstr(o, "linux.namespaces.1.type"), "pid");
  CHECK_STR(pstr(o, "linux.cgroupsPath"), "/default/t1");
  CHECK_STR(pstr(o, "root.path"), "rootfs");
  CHECK_STR(pstr(o, "process.args.1"), "hi");
  json_object_put(o);
  free(out);

  /* A spec without a linux section and without root: root is made. */
  ctx.root_path = "/r";
  CHECK_EQ(hcsb__spec_adapt("{}", 2, &ctx, &out, &err), 0);
  CHECK_STR(out, "{\"root\":{\"path\":\"/r\"}}");
  free(out);
  /* Trailing whitespace and NUL are fine. */
  CHECK_EQ(hcsb__spec_adapt("{} \n\0", 5, &ctx, &out, &err), 0);
  free(out);
}

static void test_spec_adapt_bad(void) {
  static const char *const bad[] = {
      "",
      "[]",
      "{",
      "{} x",
      "{\"mounts\":{}}",
      "{\"mounts\":[1]}",
      "{\"mounts\":[{\"type\":5}]}",
      "{\"mounts\":[{\"options\":\"rbind\"}]}",
      "{\"linux\":[]}",
      "{\"linux\":{\"namespaces\":[\"net\"]}}",
      "{\"linux\":{\"namespaces\":[{\"path\":3}]}}",
      "{\"linux\":{\"cgroupsPath\":3}}",
      "{\"process\":7}",
      "{\"root\":\"x\"}",
  };
  hcsb__spec_ctx_t ctx;
  char *out, *deep;
  const char *err;
  size_t i;

  memset(&ctx, 0, sizeof(ctx));
  ctx.id = "x";
  ctx.root_path = "/r";
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    out = (char *)1;
    err = NULL;
    if (hcsb__spec_adapt(bad[i], strlen(bad[i]), &ctx, &out, &err) != -EINVAL)
      hcsb_test_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
    CHECK(out == NULL);
    CHECK(err != NULL);
  }
  /* Nesting beyond the limit. */
  deep = malloc(2 * 200 + 16);
  CHECK(deep != NULL);
  strcpy(deep, "{\"a\":");
  for (i = 0; i < 200; i++) strcat(deep, "[");
  for (i = 0; i < 200; i++) strcat(deep, "]");
  strcat(deep, "}");
  CHECK_EQ(hcsb__spec_adapt(deep, strlen(deep), &ctx, &out, &err), -EINVAL);
  free(deep);
  CHECK_EQ(hcsb__spec_adapt("{}", HCSB__SPEC_MAX_BYTES + 1, &ctx, &out, &err),
           -E2BIG);
}

static void test_spec_pod_role(void) {
  hcsb__pod_role_t role;
  char id[8];

  CHECK_EQ(
      hcsb__spec_pod_role(cri_spec, strlen(cri_spec), &role, id, sizeof id), 0);
  CHECK_EQ(role, HCSB__POD_MEMBER);
  CHECK_STR(id, "sb1");
  CHECK_EQ(hcsb__spec_pod_role("{}", 2, &role, id, sizeof id), 0);
  CHECK_EQ(role, HCSB__POD_NONE);
  CHECK_STR(id, "");
#define ANN(t, s) \
  "{\"annotations\":{\"io.kubernetes.cri.container-type\":\"" t "\"" s "}}"
  CHECK_EQ(hcsb__spec_pod_role(ANN("sandbox", ""), strlen(ANN("sandbox", "")),
                               &role, id, sizeof id),
           0);
  CHECK_EQ(role, HCSB__POD_SANDBOX);
  /* A member without its sandbox, an unknown type, an ID too long. */
  CHECK_EQ(
      hcsb__spec_pod_role(ANN("container", ""), strlen(ANN("container", "")),
                          &role, id, sizeof id),
      -EINVAL);
  CHECK_EQ(role, HCSB__POD_NONE);
  CHECK_EQ(hcsb__spec_pod_role(ANN("vm", ""), strlen(ANN("vm", "")), &role, id,
                               sizeof id),
           -EINVAL);
#define LONGID ",\"io.kubernetes.cri.sandbox-id\":\"0123456789\""
  CHECK_EQ(hcsb__spec_pod_role(ANN("container", LONGID),
                               strlen(ANN("container", LONGID)), &role, id,
                               sizeof id),
           -EINVAL);
  CHECK_EQ(hcsb__spec_pod_role("[]", 2, &role, id, sizeof id), -EINVAL);
  CHECK_EQ(hcsb__spec_terminal(cri_spec, strlen(cri_spec)), 1);
  CHECK_EQ(hcsb__spec_terminal("{}", 2), 0);
  CHECK_EQ(hcsb__spec_terminal("{\"process\":{\"terminal\":1}}", 27), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* The rootfs plan */

static void test_rootfs_overlay(void) {
  const char *opts[] = {"index=off", "workdir=/s/9/work", "upperdir=/s/9/fs",
                        "lowerdir=/s/3/fs:/s/2/fs:/s/1/fs"};
  hcsb__mount_t m = {"overlay", "overlay", NULL, opts, 4};
  hcsb__rootfs_plan_t plan;
  const char *err;
  char up[512], lower[600];

  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), 0);
  CHECK_EQ(plan.nlayers, 3); /* upperdir absent: no extra layer */
  CHECK_STR(plan.layers[0].dir, "/s/1/fs");
  CHECK_STR(plan.layers[1].dir, "/s/2/fs");
  CHECK_STR(plan.layers[2].dir, "/s/3/fs");
  CHECK(plan.layers[0].cacheable && plan.layers[2].cacheable);
  hcsb__rootfs_plan_free(&plan);

  /* An upperdir with something in it is the top layer, not cached. */
  snprintf(up, sizeof up, "%s/upper", hcsb_test_tmpdir());
  CHECK_EQ(mkdir(up, 0755), 0);
  snprintf(lower, sizeof lower, "upperdir=%s", up);
  opts[2] = lower;
  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), 0);
  CHECK_EQ(plan.nlayers, 3); /* empty */
  hcsb__rootfs_plan_free(&plan);
  snprintf(lower, sizeof lower, "%s/file", up);
  CHECK_EQ(close(open(lower, O_CREAT | O_WRONLY, 0644)), 0);
  snprintf(lower, sizeof lower, "upperdir=%s", up);
  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), 0);
  CHECK_EQ(plan.nlayers, 4);
  CHECK_STR(plan.layers[3].dir, up);
  CHECK_EQ(plan.layers[3].cacheable, 0);
  hcsb__rootfs_plan_free(&plan);

  /* One lowerdir. */
  opts[3] = "lowerdir=/only";
  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), 0);
  CHECK_EQ(plan.nlayers, 4 - 2);
  CHECK_STR(plan.layers[0].dir, "/only");
  hcsb__rootfs_plan_free(&plan);
}

static void test_rootfs_bind_and_none(void) {
  const char *rw[] = {"rbind", "rw"}, *ro[] = {"rbind", "ro"};
  hcsb__mount_t m = {"bind", "/snap/5/fs", NULL, rw, 2};
  hcsb__rootfs_plan_t plan;
  const char *err;

  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), 0);
  CHECK_EQ(plan.nlayers, 1);
  CHECK_STR(plan.layers[0].dir, "/snap/5/fs");
  CHECK_EQ(plan.layers[0].cacheable, 0); /* writable: per container */
  hcsb__rootfs_plan_free(&plan);
  m.options = ro;
  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), 0);
  CHECK_EQ(plan.layers[0].cacheable, 1);
  hcsb__rootfs_plan_free(&plan);
  /* No mounts: the spec's root.path, relative to the bundle. */
  CHECK_EQ(hcsb__rootfs_plan(NULL, 0, "/run/b/t1", "rootfs", &plan, &err), 0);
  CHECK_STR(plan.layers[0].dir, "/run/b/t1/rootfs");
  CHECK_EQ(plan.layers[0].cacheable, 0);
  hcsb__rootfs_plan_free(&plan);
  CHECK_EQ(hcsb__rootfs_plan(NULL, 0, "/run/b/t1", "/abs/root", &plan, &err),
           0);
  CHECK_STR(plan.layers[0].dir, "/abs/root");
  hcsb__rootfs_plan_free(&plan);
}

static void test_rootfs_refused(void) {
  static const struct {
    const char *type, *source, *opt;
    int nmounts, err;
  } bad[] = {
      {"overlay", "overlay", "workdir=/w", 1, -EINVAL}, /* no lowerdir */
      {"overlay", "overlay", "lowerdir=", 1, -EINVAL},  /* empty */
      {"overlay", "overlay", "lowerdir=/a::/b", 1, -EINVAL},
      {"overlay", "overlay", "lowerdir=/a:rel", 1, -EINVAL},
      {"overlay", "overlay", "lowerdir=/a/../etc", 1, -EINVAL},
      {"overlay", "overlay", "lowerdir=/a/./b", 1, -EINVAL},
      {"bind", NULL, "rbind", 1, -EINVAL},
      {"bind", "snap", "rbind", 1, -EINVAL},
      {"tmpfs", "tmpfs", "size=1m", 1, -EINVAL},
      {NULL, "x", "", 1, -EINVAL},
      {"bind", "/a", "rbind", 2, -EINVAL}, /* two mounts */
  };
  hcsb__rootfs_plan_t plan;
  const char *err;
  size_t i;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *opts[1] = {bad[i].opt};
    hcsb__mount_t m[2] = {{bad[i].type, bad[i].source, NULL, opts, 1},
                          {bad[i].type, bad[i].source, NULL, opts, 1}};
    err = NULL;
    if (hcsb__rootfs_plan(m, (size_t)bad[i].nmounts, "/b", NULL, &plan, &err) !=
        bad[i].err)
      hcsb_test_fail(__FILE__, __LINE__, "case %zu accepted", i);
    CHECK(err != NULL);
    CHECK_EQ(plan.nlayers, 0);
  }
}

static void test_rootfs_limits(void) {
  char *lower = malloc(10 + 65 * 8 + 1), *p;
  const char *opts[1];
  hcsb__mount_t m = {"overlay", "overlay", NULL, opts, 1};
  hcsb__rootfs_plan_t plan;
  const char *err;
  char *longp;
  int i;

  CHECK(lower != NULL);
  p = lower + sprintf(lower, "lowerdir=");
  for (i = 0; i < 64; i++) p += sprintf(p, "%s/l%02d", i ? ":" : "", i);
  opts[0] = lower;
  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), 0);
  CHECK_EQ(plan.nlayers, 64);
  CHECK_STR(plan.layers[0].dir, "/l63");
  CHECK_STR(plan.layers[63].dir, "/l00");
  hcsb__rootfs_plan_free(&plan);
  sprintf(p, ":/l64");
  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), -E2BIG);
  CHECK_EQ(plan.nlayers, 0);
  free(lower);
  longp = malloc(HCSB__ROOTFS_PATH_MAX + 2);
  CHECK(longp != NULL);
  longp[0] = '/';
  memset(longp + 1, 'a', HCSB__ROOTFS_PATH_MAX);
  longp[HCSB__ROOTFS_PATH_MAX + 1] = '\0';
  m.type = "bind";
  m.source = longp;
  opts[0] = "ro";
  CHECK_EQ(hcsb__rootfs_plan(&m, 1, "/b", NULL, &plan, &err), -ENAMETOOLONG);
  free(longp);
}

/* ------------------------------------------------------------------------ */
/* Layer images */

typedef struct built_s {
  int done, status, calls;
  char image[4096];
  char msg[1024];
} built_t;

static void on_built(void *data, int status, const char *image,
                     const char *msg) {
  built_t *b = data;

  b->calls++;
  b->done = 1;
  b->status = status;
  snprintf(b->image, sizeof b->image, "%s", image != NULL ? image : "");
  snprintf(b->msg, sizeof b->msg, "%s", msg != NULL ? msg : "");
  if (status == 0) CHECK(image != NULL && msg == NULL);
  if (status != 0) CHECK(image == NULL && msg != NULL);
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

/* Runs the loop until *flag; a 10 ms tick makes each turn come back. */
static void run_until(uv_loop_t *loop, const int *flag) {
  uint64_t end = uv_now(loop) + 20000u * hcsb_test_timeout_scale();
  uv_timer_t tick;

  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  while (!*flag) {
    uv_run(loop, UV_RUN_ONCE);
    uv_update_time(loop);
    if (uv_now(loop) > end) hcsb_test_fail(__FILE__, __LINE__, "timed out");
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static void drain(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(loop), 0);
}

static int runs(void) {
  char p[512], buf[256];
  FILE *f;
  int n = 0;

  snprintf(p, sizeof p, "%s/runs", hcsb_test_tmpdir());
  f = fopen(p, "r");
  if (f == NULL) return 0;
  while (fgets(buf, sizeof buf, f) != NULL) n++;
  fclose(f);
  return n;
}

static void write_file(const char *dir, const char *name, const char *text) {
  char p[1024];
  FILE *f;

  snprintf(p, sizeof p, "%s/%s", dir, name);
  f = fopen(p, "w");
  CHECK(f != NULL);
  fputs(text, f);
  fclose(f);
}

/* An executable shell script <tmp>/`name` running `body`; its path in
 * `path`.  The layer tests' stand-ins for hcsb-mklayer. */
static void write_script(char *path, size_t len, const char *name,
                         const char *body) {
  char text[1024];

  snprintf(path, len, "%s/%s", hcsb_test_tmpdir(), name);
  snprintf(text, sizeof text, "#!/bin/sh\n%s", body);
  write_file(hcsb_test_tmpdir(), name, text);
  CHECK_EQ(chmod(path, 0755), 0);
}

/* A maker that counts its runs in <tmp>/runs, then runs hcsb-mklayer
 * (after $MAKER_PREFIX, when set). */
static const char *counting_maker(void) {
  static char path[512];
  char body[900];
  const char *prefix = getenv("MAKER_PREFIX");

  snprintf(body, sizeof body, "echo run >>%s/runs\n%s\"$@\"\nexec %s \"$@\"\n",
           hcsb_test_tmpdir(), prefix != NULL ? prefix : "",
           hcsb_test_build_path("src/tools/hcsb-mklayer"));
  write_script(path, sizeof path, "maker", body);
  return path;
}

/* The content of `file` in ext4 image `img`, read with debugfs. */
static char *image_cat(const char *img, const char *file) {
  static char out[4096];
  char cmd[2048];
  FILE *p;
  size_t n;

  snprintf(cmd, sizeof cmd, "debugfs -R 'cat %s' '%s' 2>/dev/null", file, img);
  p = popen(cmd, "r");
  CHECK(p != NULL);
  n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  pclose(p);
  return out;
}

static void layer_dir(char *dir, size_t len, const char *name,
                      const char *content) {
  snprintf(dir, len, "%s/%s", hcsb_test_tmpdir(), name);
  CHECK_EQ(mkdir(dir, 0755), 0);
  write_file(dir, "hello", content);
}

/* Starts a build of `layer` into *b (cleared first) and checks its
 * callback did not run inside the call; the request, for a cancel. */
static hcsb__layer_req_t *start_build(uv_loop_t *loop, const char *cache,
                                      const hcsb__layer_t *layer,
                                      const char *maker, built_t *b) {
  hcsb__layer_req_t *req = NULL;

  memset(b, 0, sizeof(*b));
  CHECK_EQ(hcsb__layer_image(loop, cache, layer, maker, on_built, b, &req), 0);
  CHECK_EQ(b->calls, 0);
  return req;
}

static void test_layer_image_cached(void) {
  uv_loop_t loop;
  hcsb__layer_t layer;
  built_t a, b;
  char dir[512], cache[512], first[4096];
  const char *maker = counting_maker();
  struct stat st;

  CHECK_EQ(uv_loop_init(&loop), 0);
  layer_dir(dir, sizeof dir, "l1", "layer one\n");
  snprintf(cache, sizeof cache, "%s/cache/layers", hcsb_test_tmpdir());
  layer.dir = dir;
  layer.cacheable = 1;
  start_build(&loop, cache, &layer, maker, &a);
  run_until(&loop, &a.done);
  CHECK_EQ(a.status, 0);
  CHECK_EQ(a.calls, 1);
  CHECK(strncmp(a.image, cache, strlen(cache)) == 0);
  CHECK_EQ(stat(a.image, &st), 0);
  CHECK_EQ(st.st_size % (2 << 20), 0);
  CHECK_STR(image_cat(a.image, "/hello"), "layer one\n");
  CHECK_EQ(runs(), 1);
  snprintf(first, sizeof first, "%s", a.image);

  /* Again: from the cache, the maker does not run. */
  start_build(&loop, cache, &layer, maker, &b);
  run_until(&loop, &b.done);
  CHECK_EQ(b.status, 0);
  CHECK_STR(b.image, first);
  CHECK_EQ(runs(), 1);

  /* The snapshot is removed and made again at the same path: a new
   * identity, so a new image with the new content. */
  {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
  }
  CHECK_EQ(mkdir(dir, 0755), 0);
  write_file(dir, "hello", "layer one, again\n");
  start_build(&loop, cache, &layer, maker, &b);
  run_until(&loop, &b.done);
  CHECK_EQ(b.status, 0);
  CHECK_EQ(runs(), 2);
  CHECK_STR(image_cat(b.image, "/hello"), "layer one, again\n");
  drain(&loop);
}

static void test_layer_image_private(void) {
  uv_loop_t loop;
  hcsb__layer_t layer;
  built_t a, b;
  char dir[512], cache[512], tmp[600];
  const char *maker = counting_maker();

  CHECK_EQ(uv_loop_init(&loop), 0);
  layer_dir(dir, sizeof dir, "rw", "writable\n");
  snprintf(cache, sizeof cache, "%s/cache", hcsb_test_tmpdir());
  snprintf(tmp, sizeof tmp, "%s/tmp/", cache);
  layer.dir = dir;
  layer.cacheable = 0;
  start_build(&loop, cache, &layer, maker, &a);
  start_build(&loop, cache, &layer, maker, &b);
  run_until(&loop, &a.done);
  run_until(&loop, &b.done);
  CHECK_EQ(a.status, 0);
  CHECK_EQ(b.status, 0);
  /* Each its own file under tmp/, built each time. */
  CHECK(strncmp(a.image, tmp, strlen(tmp)) == 0);
  CHECK(strcmp(a.image, b.image) != 0);
  CHECK_EQ(runs(), 2);
  CHECK_STR(image_cat(b.image, "/hello"), "writable\n");
  CHECK_EQ(unlink(a.image), 0);
  CHECK_EQ(unlink(b.image), 0);
  drain(&loop);
}

/* Two builds of one layer at once: one runs the maker under the lock, the
 * other waits and takes the same image. */
static void test_layer_image_shared_build(void) {
  uv_loop_t loop;
  hcsb__layer_t layer;
  built_t a, b;
  char dir[512], cache[512];
  const char *maker;

  setenv("MAKER_PREFIX", "sleep 0.3; : ", 1);
  maker = counting_maker();
  CHECK_EQ(uv_loop_init(&loop), 0);
  layer_dir(dir, sizeof dir, "shared", "shared\n");
  snprintf(cache, sizeof cache, "%s/cache", hcsb_test_tmpdir());
  layer.dir = dir;
  layer.cacheable = 1;
  start_build(&loop, cache, &layer, maker, &a);
  start_build(&loop, cache, &layer, maker, &b);
  run_until(&loop, &a.done);
  run_until(&loop, &b.done);
  CHECK_EQ(a.status, 0);
  CHECK_EQ(b.status, 0);
  CHECK_STR(a.image, b.image);
  CHECK_EQ(runs(), 1);
  drain(&loop);
}

static void test_layer_image_failures(void) {
  uv_loop_t loop;
  hcsb__layer_req_t *req;
  hcsb__layer_t layer;
  built_t a;
  char dir[512], cache[512], maker[600];

  CHECK_EQ(uv_loop_init(&loop), 0);
  snprintf(cache, sizeof cache, "%s/cache", hcsb_test_tmpdir());
  /* A layer directory that is not there. */
  snprintf(dir, sizeof dir, "%s/missing", hcsb_test_tmpdir());
  layer.dir = dir;
  layer.cacheable = 1;
  start_build(&loop, cache, &layer, "/bin/true", &a);
  run_until(&loop, &a.done);
  CHECK_EQ(a.status, -ENOENT);
  CHECK(strstr(a.msg, "missing") != NULL);

  /* A maker that fails says why (its last stderr line). */
  layer_dir(dir, sizeof dir, "l", "x");
  write_script(maker, sizeof maker, "badmaker",
               "echo noise >&2\necho 'disk on fire' >&2\nexit 1\n");
  start_build(&loop, cache, &layer, maker, &a);
  run_until(&loop, &a.done);
  CHECK_EQ(a.status, -EIO);
  CHECK(strstr(a.msg, ": disk on fire") != NULL);
  CHECK(strstr(a.msg, "noise") == NULL);

  /* A maker that cannot run at all. */
  start_build(&loop, cache, &layer, "/nonexistent/maker", &a);
  run_until(&loop, &a.done);
  CHECK(a.status < 0);
  CHECK(strstr(a.msg, "/nonexistent/maker") != NULL);

  /* Bad arguments: nothing runs. */
  CHECK_EQ(
      hcsb__layer_image(&loop, "relative", &layer, NULL, on_built, &a, &req),
      -EINVAL);
  drain(&loop);
}

static void test_layer_image_cancel(void) {
  uv_loop_t loop;
  hcsb__layer_req_t *req;
  hcsb__layer_t layer;
  built_t a;
  char dir[512], cache[512], maker[600];

  CHECK_EQ(uv_loop_init(&loop), 0);
  snprintf(cache, sizeof cache, "%s/cache", hcsb_test_tmpdir());
  layer_dir(dir, sizeof dir, "l", "x");
  write_script(maker, sizeof maker, "slowmaker", "sleep 30\n");
  layer.dir = dir;
  layer.cacheable = 1;
  req = start_build(&loop, cache, &layer, maker, &a);
  /* Let the maker start, then cancel: the callback once, later. */
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_run(&loop, UV_RUN_NOWAIT);
  hcsb__layer_image_cancel(req);
  CHECK_EQ(a.calls, 0);
  run_until(&loop, &a.done);
  CHECK_EQ(a.status, -ECANCELED);
  CHECK_EQ(a.calls, 1);
  drain(&loop);
  CHECK_EQ(a.calls, 1);

  /* Cancelled before anything ran. */
  CHECK_EQ(uv_loop_init(&loop), 0);
  req = start_build(&loop, cache, &layer, maker, &a);
  hcsb__layer_image_cancel(req);
  hcsb__layer_image_cancel(req);
  CHECK_EQ(a.calls, 0);
  drain(&loop);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, -ECANCELED);
}

/* ------------------------------------------------------------------------ */
/* readfile.h: the whole file, bounded, never blocking on a FIFO */

static void test_read_file(void) {
  char path[512], *text = (char *)"x";
  size_t len = 7;

  write_file(hcsb_test_tmpdir(), "small", "one\ntwo\n");
  snprintf(path, sizeof path, "%s/small", hcsb_test_tmpdir());
  CHECK_EQ(hcsb__shim_read_file(path, 8, &text, &len), 0);
  CHECK_STR(text, "one\ntwo\n");
  CHECK_EQ(len, 8);
  free(text);
  /* One byte over the bound: refused, nothing allocated. */
  text = (char *)"x";
  CHECK_EQ(hcsb__shim_read_file(path, 7, &text, &len), -EFBIG);
  CHECK(text == NULL);
  CHECK_EQ(len, 0);
  /* Empty: an empty string, not NULL. */
  write_file(hcsb_test_tmpdir(), "empty", "");
  snprintf(path, sizeof path, "%s/empty", hcsb_test_tmpdir());
  CHECK_EQ(hcsb__shim_read_file(path, 8, &text, &len), 0);
  CHECK_STR(text, "");
  CHECK_EQ(len, 0);
  free(text);
  snprintf(path, sizeof path, "%s/absent", hcsb_test_tmpdir());
  CHECK_EQ(hcsb__shim_read_file(path, 8, &text, &len), -ENOENT);
  CHECK(text == NULL);
  /* Not a regular file: a directory, and a FIFO nobody writes to (a read
   * would block forever). */
  CHECK_EQ(hcsb__shim_read_file(hcsb_test_tmpdir(), 8, &text, &len), -EINVAL);
  snprintf(path, sizeof path, "%s/fifo", hcsb_test_tmpdir());
  CHECK_EQ(mkfifo(path, 0600), 0);
  CHECK_EQ(hcsb__shim_read_file(path, 8, &text, &len), -EINVAL);
  CHECK(text == NULL);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(proc_table),
      TEST_ENTRY(proc_life),
      TEST_ENTRY(spec_adapt_pod_member),
      TEST_ENTRY(spec_adapt_own),
      TEST_ENTRY(spec_adapt_bad),
      TEST_ENTRY(spec_pod_role),
      TEST_ENTRY(rootfs_overlay),
      TEST_ENTRY(rootfs_bind_and_none),
      TEST_ENTRY(rootfs_refused),
      TEST_ENTRY(rootfs_limits),
      TEST_ENTRY(read_file),
      TEST_ENTRY_T(layer_image_cached, 60),
      TEST_ENTRY_T(layer_image_private, 60),
      TEST_ENTRY_T(layer_image_shared_build, 60),
      TEST_ENTRY_T(layer_image_failures, 60),
      TEST_ENTRY_T(layer_image_cancel, 60),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
