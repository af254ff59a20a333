/* VPMem: read-only images hot-plugged as virtio-pmem and mounted by the
 * guest (uvm.h, hcsb_uvm_add_vpmem).
 *
 * One operation at a time, in call order, so the guest numbers devices in
 * the order they were plugged (it takes the next free N, and QEMU 7.2
 * cannot unplug virtio-pmem, so numbers are never reused).  An add is
 *   object-add  memory-backend-file, read-only, align 2 MiB
 *   device_add  virtio-pmem-pci on the next free root port
 *   wait        a UVM process waits for /dev/pmemN and checks its size
 *               (a v0.11.8 GCS mounts at once and fails when the node is
 *               not there yet; ACPI hot-plug takes tens of ms)
 *   modify      VPMem Add (MappingInfo/VerityInfo as given)
 * Each step is bounded by what is left of vpmem_timeout_ms and ends
 * through its own callback, so an operation ends exactly once, from the
 * step that failed or the last one.  Closing the VM (or its death) fails
 * the queue at once; callbacks still out then find their operation
 * finished and only drop their reference.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvm/uvm-int.h"

#define WAIT_STEP_MS 20u

enum { OP_ADD = 1, OP_REMOVE };
enum { S_QUEUED = 0, S_OBJECT, S_DEVICE, S_WAIT, S_MODIFY, S_DONE };

struct hcsb__uvm_op_s {
  hcsb__link_t link; /* u->vpmem_queue */
  hcsb_uvm_t *u;
  int kind, step, refs;
  uint8_t finished;
  hcsb__vpmem_done done;
  void *data;
  hcsb__defer_t defer; /* completions decided outside a loop callback */
  int status;
  uint64_t deadline; /* uv_now ms */
  /* add */
  char *image;
  struct stat st;
  char *mount_path; /* NULL: /run/layers/p<N> */
  hcsb_verity_info_t verity;
  char *v_digest, *v_salt, *v_alg; /* verity's strings */
  int has_verity;
  int has_mapping;
  uint64_t map_offset, map_size;
  char activity_id[40]; /* "" = fresh per call */
  uint32_t call_timeout_ms;
  uint32_t dev; /* the device being worked on */
  hcsb_process_t *waiter;
};

static void run_next(hcsb_uvm_t *u);

static uint32_t remaining(const hcsb__uvm_op_t *op, uint32_t cap) {
  uint64_t now = uv_now(op->u->loop);
  uint64_t left = op->deadline > now ? op->deadline - now : 1;
  if (cap != 0 && left > cap) left = cap;
  return (uint32_t)left;
}

static void op_free(hcsb__uvm_op_t *op) {
  free(op->image);
  free(op->mount_path);
  free(op->v_digest);
  free(op->v_salt);
  free(op->v_alg);
  free(op);
}

static void op_unref(hcsb__uvm_op_t *op) {
  hcsb_uvm_t *u = op->u;
  if (--op->refs > 0) return;
  op_free(op);
  hcsb__uvm_check_idle(u);
  hcsb__handle_unref(&u->h);
}

/* The one completion path: off the queue, the callback, the next one. */
static void op_finish(hcsb__uvm_op_t *op, int status,
                      const hcsb_guest_error_t *gerr) {
  hcsb_uvm_t *u = op->u;
  if (op->finished) return;
  /* Failed with the VM (or its close) first: that is the outcome, not
   * what a step in flight saw of it. */
  if (hcsb__defer_queued(&op->defer) && op->status != 0) {
    status = op->status;
    gerr = NULL;
  } else if (u->exited && !u->closing &&
             (status == -ECANCELED || status == -ECONNRESET)) {
    status = -EHOSTDOWN;
  }
  op->finished = 1;
  op->step = S_DONE;
  hcsb__list_remove(&op->link);
  hcsb__defer_cancel(&u->dq, &op->defer);
  hcsb__handle_ref(&u->h);
  if (op->done != NULL) op->done(op->data, status, gerr, op->dev);
  if (!u->closing && u->step == HCSB__STEP_RUNNING) run_next(u);
  op_unref(op); /* the queue's */
  hcsb__handle_unref(&u->h);
}

static void finish_deferred(hcsb__defer_t *d) {
  hcsb__uvm_op_t *op = HCSB__CONTAINER_OF(d, hcsb__uvm_op_t, defer);
  op_finish(op, op->status, NULL);
}

static void finish_later(hcsb__uvm_op_t *op, int status) {
  op->status = status;
  hcsb__uvm_defer(op->u, &op->defer, finish_deferred);
}

/* A callback of a step came back: 1 when the operation still wants it. */
static int step_back(hcsb__uvm_op_t *op) {
  if (op->finished) {
    op_unref(op);
    return 0;
  }
  op_unref(op); /* the step's; the queue still holds one */
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Devices */

static hcsb__vpmem_dev_t *dev_find_image(hcsb_uvm_t *u, const struct stat *st) {
  for (size_t i = 0; i < u->ndevs; i++) {
    hcsb__vpmem_dev_t *d = &u->devs[i];
    if (!d->broken && d->st_dev == st->st_dev && d->st_ino == st->st_ino &&
        d->size == (uint64_t)st->st_size &&
        d->mtime.tv_sec == st->st_mtim.tv_sec &&
        d->mtime.tv_nsec == st->st_mtim.tv_nsec)
      return d;
  }
  return NULL;
}

static void pub_sync(hcsb_uvm_t *u) {
  for (size_t i = 0; i < u->ndevs; i++) {
    u->pubs[i].device_number = (uint32_t)i;
    u->pubs[i].mount_path = u->devs[i].mounted ? u->devs[i].mount_path : NULL;
    u->pubs[i].refs = u->devs[i].refs;
  }
}

/* Records a plugged device (its number is its index). */
static int dev_append(hcsb_uvm_t *u, const hcsb__uvm_op_t *op, uint32_t slot) {
  hcsb__vpmem_dev_t *d;
  if (u->ndevs == u->devs_cap) {
    size_t cap = u->devs_cap ? u->devs_cap * 2 : 4;
    hcsb__vpmem_dev_t *nd = realloc(u->devs, cap * sizeof *nd);
    hcsb_uvm_vpmem_t *np;
    if (nd == NULL) return -ENOMEM;
    u->devs = nd;
    np = realloc(u->pubs, cap * sizeof *np);
    if (np == NULL) return -ENOMEM;
    u->pubs = np;
    u->devs_cap = cap;
  }
  d = &u->devs[u->ndevs];
  memset(d, 0, sizeof *d);
  d->image = strdup(op->image);
  d->st_dev = op->st.st_dev;
  d->st_ino = op->st.st_ino;
  d->size = (uint64_t)op->st.st_size;
  d->mtime = op->st.st_mtim;
  d->slot = slot;
  u->ndevs++;
  u->vpmem_bytes += d->size;
  pub_sync(u);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Add */

static void add_modify(hcsb__uvm_op_t *op);

static int build_request(const hcsb__uvm_op_t *op, hcsb_request_type_t rt,
                         uint32_t dev, const char *mount_path, char **json) {
  hcsb_vpmem_device_t d;
  memset(&d, 0, sizeof d);
  d.device_number = dev;
  d.mount_path = mount_path;
  d.has_mapping = op->has_mapping;
  d.device_offset_bytes = op->map_offset;
  d.device_size_bytes = op->map_size;
  return hcsb_modify_vpmem_device_verity(
      rt, &d, op->has_verity ? &op->verity : NULL, json);
}

static void modify_done(void *data, int status,
                        const hcsb_guest_error_t *gerr) {
  hcsb__uvm_op_t *op = data;
  hcsb_uvm_t *u = op->u;
  hcsb__vpmem_dev_t *d = op->dev < u->ndevs ? &u->devs[op->dev] : NULL;

  /* The guest's answer stands whoever still waits for it: a mount that
   * happened is a mount (it is undone by a remove, or with the VM). */
  if (d != NULL && status == 0 && op->kind == OP_ADD) {
    d->mounted = 1;
    free(d->verity);
    d->verity = op->has_verity && op->v_digest ? strdup(op->v_digest) : NULL;
  }
  if (d != NULL && op->kind == OP_REMOVE) d->mounted = status != 0;
  pub_sync(u);
  if (!step_back(op)) return;
  if (status == 0 && op->kind == OP_ADD) d->refs++;
  pub_sync(u);
  hcsb__uvm_log(u, status == 0 ? HCSB_LOG_DEBUG : HCSB_LOG_WARN,
                "VPMem %s of /dev/pmem%u (%s): %s",
                op->kind == OP_ADD ? "Add" : "Remove", (unsigned)op->dev,
                d != NULL ? d->mount_path : "?", hcsb_strerror(status));
  op_finish(op, status, gerr);
}

static void send_modify(hcsb__uvm_op_t *op, const char *json) {
  hcsb_call_opts_t co;
  int rc;

  memset(&co, 0, sizeof co);
  co.activity_id = op->activity_id[0] ? op->activity_id : NULL;
  co.timeout_ms = remaining(op, op->call_timeout_ms);
  op->step = S_MODIFY;
  op->refs++;
  rc = hcsb_conn_modify(op->u->conn, &co, json, modify_done, op);
  if (rc != 0) {
    op->refs--;
    op_finish(op, rc, NULL);
  }
}

static void add_modify(hcsb__uvm_op_t *op) {
  hcsb_uvm_t *u = op->u;
  hcsb__vpmem_dev_t *d = &u->devs[op->dev];
  char *add = NULL, *rm = NULL, path[64];
  int rc;

  if (d->mount_path == NULL) {
    if (op->mount_path != NULL) {
      d->mount_path = strdup(op->mount_path);
    } else {
      snprintf(path, sizeof path, "/run/layers/p%u", (unsigned)op->dev);
      d->mount_path = strdup(path);
    }
    if (d->mount_path == NULL) {
      op_finish(op, -ENOMEM, NULL);
      return;
    }
  }
  rc = build_request(op, HCSB_REQUEST_ADD, op->dev, d->mount_path, &add);
  if (rc == 0)
    rc = build_request(op, HCSB_REQUEST_REMOVE, op->dev, d->mount_path, &rm);
  if (rc != 0) {
    hcsb_free(add);
    op_finish(op, rc, NULL);
    return;
  }
  hcsb_free(d->remove_json);
  d->remove_json = rm;
  send_modify(op, add);
  hcsb_free(add);
}

static void waiter_closed(void *data) {
  op_unref(data);
}

/* The process handle holds one reference on the operation, from its
 * create to its close callback (which comes after its others). */
static void waiter_end(hcsb__uvm_op_t *op) {
  if (op->waiter == NULL) return;
  hcsb_process_close(op->waiter, waiter_closed, op);
  op->waiter = NULL;
}

static void waiter_exited(void *data, hcsb_process_t *p, int status,
                          uint32_t code) {
  hcsb__uvm_op_t *op = data;
  hcsb_uvm_t *u = op->u;
  (void)p;

  waiter_end(op);
  if (op->finished) return;
  if (status == 0 && code == 0) {
    hcsb__uvm_log(u, HCSB_LOG_DEBUG, "/dev/pmem%u is there (%.0f ms)",
                  (unsigned)op->dev, hcsb__uvm_elapsed_ms(u));
    add_modify(op);
    return;
  }
  u->devs[op->dev].broken = 1;
  if (status == 0 && code == 3) {
    hcsb__uvm_log(u, HCSB_LOG_ERROR,
                  "/dev/pmem%u has another size than %s: the guest numbers "
                  "devices differently; no more VPMem for this VM",
                  (unsigned)op->dev, op->image);
    u->vpmem_broken = 1;
    status = -EIO;
  } else if (status == 0) {
    hcsb__uvm_log(u, HCSB_LOG_ERROR,
                  "/dev/pmem%u did not appear in the guest (waiter exit %u)",
                  (unsigned)op->dev, (unsigned)code);
    status = -ETIMEDOUT;
  }
  op_finish(op, status, NULL);
}

static void waiter_started(void *data, hcsb_process_t *p, int status,
                           const hcsb_guest_error_t *gerr) {
  hcsb__uvm_op_t *op = data;
  char line[256] = "";
  (void)p;
  /* A failure reaches the exit wait too, which ends the step. */
  if (status == 0 || op->finished) return;
  if (gerr != NULL) hcsb_guest_error_format(gerr, line, sizeof line);
  hcsb__uvm_log(op->u, HCSB_LOG_ERROR,
                "the guest cannot run the process that waits for /dev/pmem%u "
                "(see hcsb_uvm_options_t.vpmem_wait): %s %s",
                (unsigned)op->dev, hcsb_strerror(status), line);
}

/* /dev/pmemN, with the image's size: a UVM process waits for it. */
static void add_wait(hcsb__uvm_op_t *op) {
  hcsb_uvm_t *u = op->u;
  hcsb_process_config_t pc;
  const char *argv[4];
  const char *env[] = {"PATH=/bin:/sbin:/usr/bin:/usr/sbin"};
  char script[512];
  uint32_t left = remaining(op, 0);
  unsigned tries = left / WAIT_STEP_MS + 1;
  int rc;

  if (u->cfg.vpmem_wait == HCSB_UVM_VPMEM_WAIT_NONE) {
    add_modify(op);
    return;
  }
  snprintf(script, sizeof script,
           "n=0; while [ ! -b /dev/pmem%u ]; do [ $n -ge %u ] && exit 2; "
           "n=$((n+1)); sleep 0.%02u; done; "
           "[ \"$(cat /sys/block/pmem%u/size)\" = %llu ] || exit 3",
           (unsigned)op->dev, tries, WAIT_STEP_MS / 10, (unsigned)op->dev,
           (unsigned long long)((uint64_t)op->st.st_size / 512));
  argv[0] = "/bin/sh";
  argv[1] = "-c";
  argv[2] = script;
  argv[3] = NULL;
  memset(&pc, 0, sizeof pc);
  pc.command_args = argv;
  pc.ncommand_args = 3;
  pc.environment = env;
  pc.nenvironment = 1;
  op->step = S_WAIT;
  op->refs++;
  rc = hcsb_conn_create_process(u->conn, NULL, &pc, waiter_started, op,
                                &op->waiter);
  if (rc != 0) {
    op->refs--;
    op->waiter = NULL;
  } else {
    rc = hcsb_process_wait(op->waiter, left + 5000, waiter_exited, op);
    if (rc == 0) return;
    waiter_end(op);
  }
  u->devs[op->dev].broken = 1;
  op_finish(op, rc, NULL);
}

/* Sends one QMP step of an add (object-add, device_add), holding a
 * reference on the op while QEMU answers.  `args` is the caller's, built
 * already (`built` false when that ran out of memory); the op ends here
 * when nothing could be sent. */
static void qmp_step(hcsb__uvm_op_t *op, int step, const char *command,
                     json_object *args, int built, hcsb__qmp_cmd_cb done) {
  int rc = -ENOMEM;

  if (built) {
    op->step = step;
    op->refs++;
    rc = hcsb__qmp_mon_command(&op->u->mon, command, args,
                               remaining(op, op->u->cfg.qmp_timeout_ms), done,
                               op);
    if (rc != 0) op->refs--;
  }
  json_object_put(args);
  if (rc != 0) op_finish(op, rc, NULL);
}

/* A QMP step's answer, when it is a failure: the op ends with it and 1 is
 * returned.  The monitor ends with QEMU (-EHOSTDOWN then); QEMU's refusal
 * is of the caller's image (-EINVAL), logged as QEMU said it. */
static int qmp_failed(hcsb__uvm_op_t *op, int status,
                      const hcsb__qmp_msg_t *msg, const char *what) {
  if (status == 0) return 0;
  if (status == -ECONNRESET) status = -EHOSTDOWN;
  if (msg != NULL && msg->kind == HCSB__QMP_ERROR)
    hcsb__uvm_log(op->u, HCSB_LOG_ERROR, "QEMU refused %s as VPMem %s: %s",
                  op->image, what, msg->error_desc);
  op_finish(op, status == -EREMOTEIO ? -EINVAL : status, NULL);
  return 1;
}

static void object_deleted(void *data, int status, const hcsb__qmp_msg_t *msg) {
  (void)msg;
  hcsb__uvm_log(data, status == 0 ? HCSB_LOG_DEBUG : HCSB_LOG_WARN,
                "object-del after a refused device: %s", hcsb_strerror(status));
}

static void device_done(void *data, int status, const hcsb__qmp_msg_t *msg) {
  hcsb__uvm_op_t *op = data;
  hcsb_uvm_t *u = op->u;
  uint32_t slot = (uint32_t)u->ndevs + 1;

  if (status == 0 && !u->closing) {
    /* Plugged: the number is taken, whatever happens next. */
    if (dev_append(u, op, slot) != 0) {
      u->vpmem_broken = 1; /* cannot keep count any more */
      status = -ENOMEM;
    }
  } else if (status == -ETIMEDOUT) {
    /* QEMU may still plug it: the numbering can no longer be known. */
    u->vpmem_broken = 1;
  }
  if (status == -EREMOTEIO) {
    /* Its memory backend would block the next add's name. */
    json_object *args = json_object_new_object();
    char mem[32];
    snprintf(mem, sizeof mem, "vpmem-mem%u", (unsigned)u->ndevs);
    if (args != NULL &&
        json_object_object_add(args, "id", json_object_new_string(mem)) == 0)
      hcsb__qmp_mon_command(&u->mon, "object-del", args, u->cfg.qmp_timeout_ms,
                            object_deleted, u);
    json_object_put(args);
  }
  if (!step_back(op) || qmp_failed(op, status, msg, "device")) return;
  op->dev = (uint32_t)u->ndevs - 1;
  hcsb__uvm_log(u, HCSB_LOG_DEBUG, "%s plugged as device %u (%.0f ms)",
                op->image, (unsigned)op->dev, hcsb__uvm_elapsed_ms(u));
  add_wait(op);
}

static void object_done(void *data, int status, const hcsb__qmp_msg_t *msg) {
  hcsb__uvm_op_t *op = data;
  hcsb_uvm_t *u = op->u;
  json_object *args;
  char id[32], mem[32], bus[16];
  uint32_t n = (uint32_t)u->ndevs;
  int built;

  if (!step_back(op) || qmp_failed(op, status, msg, "memory")) return;
  snprintf(id, sizeof id, "vpmem%u", (unsigned)n);
  snprintf(mem, sizeof mem, "vpmem-mem%u", (unsigned)n);
  snprintf(bus, sizeof bus, "rp%u", (unsigned)n + 1);
  args = json_object_new_object();
  built =
      args != NULL &&
      !json_object_object_add(args, "driver",
                              json_object_new_string("virtio-pmem-pci")) &&
      !json_object_object_add(args, "id", json_object_new_string(id)) &&
      !json_object_object_add(args, "memdev", json_object_new_string(mem)) &&
      !json_object_object_add(args, "bus", json_object_new_string(bus));
  qmp_step(op, S_DEVICE, "device_add", args, built, device_done);
}

static void add_object(hcsb__uvm_op_t *op) {
  hcsb_uvm_t *u = op->u;
  json_object *args;
  char id[32];
  int built;

  snprintf(id, sizeof id, "vpmem-mem%u", (unsigned)u->ndevs);
  args = json_object_new_object();
  /* share=off keeps the guest's writes (it does not see the device as
   * read-only) away from the file; readonly maps it read-only; align 2 MiB
   * makes QEMU refuse a size the guest could not map. */
  built =
      args != NULL &&
      !json_object_object_add(args, "qom-type",
                              json_object_new_string("memory-backend-file")) &&
      !json_object_object_add(args, "id", json_object_new_string(id)) &&
      !json_object_object_add(args, "mem-path",
                              json_object_new_string(op->image)) &&
      !json_object_object_add(args, "size",
                              json_object_new_int64(op->st.st_size)) &&
      !json_object_object_add(args, "share", json_object_new_boolean(0)) &&
      !json_object_object_add(args, "readonly", json_object_new_boolean(1)) &&
      !json_object_object_add(args, "align",
                              json_object_new_int64(HCSB__UVM_VPMEM_ALIGN));
  qmp_step(op, S_OBJECT, "object-add", args, built, object_done);
}

static void run_add(hcsb__uvm_op_t *op) {
  hcsb_uvm_t *u = op->u;
  hcsb__vpmem_dev_t *d = dev_find_image(u, &op->st);

  if (d != NULL) {
    op->dev = (uint32_t)(d - u->devs);
    if (d->mounted) {
      const char *want = op->has_verity ? op->v_digest : NULL;
      if (op->mount_path != NULL &&
          strcmp(op->mount_path, d->mount_path) != 0) {
        hcsb__uvm_log(u, HCSB_LOG_ERROR,
                      "%s is mounted at %s already, not at %s", op->image,
                      d->mount_path, op->mount_path);
        finish_later(op, -EBUSY);
        return;
      }
      if ((want == NULL) != (d->verity == NULL) ||
          (want != NULL && strcmp(want, d->verity) != 0)) {
        hcsb__uvm_log(u, HCSB_LOG_ERROR,
                      "%s is mounted already with other dm-verity settings",
                      op->image);
        finish_later(op, -EBUSY);
        return;
      }
      d->refs++;
      pub_sync(u);
      finish_later(op, 0);
      return;
    }
    /* Plugged before and unmounted since: mount it again. */
    op->step = S_MODIFY;
    add_modify(op);
    return;
  }
  if (u->vpmem_broken) {
    finish_later(op, -EIO);
    return;
  }
  if (u->ndevs >= u->cfg.vpmem_slots ||
      u->vpmem_bytes + (uint64_t)op->st.st_size > (uint64_t)u->cfg.vpmem_max_mb
                                                      << 20) {
    hcsb__uvm_log(u, HCSB_LOG_ERROR,
                  "no room for %s: %zu of %u VPMem slots and %llu of %u MiB "
                  "used",
                  op->image, u->ndevs, (unsigned)u->cfg.vpmem_slots,
                  (unsigned long long)(u->vpmem_bytes >> 20),
                  (unsigned)u->cfg.vpmem_max_mb);
    finish_later(op, -ENOSPC);
    return;
  }
  add_object(op);
}

/* ------------------------------------------------------------------------ */
/* Remove */

static void run_remove(hcsb__uvm_op_t *op) {
  hcsb_uvm_t *u = op->u;
  hcsb__vpmem_dev_t *d = op->dev < u->ndevs ? &u->devs[op->dev] : NULL;

  if (d == NULL || d->refs == 0) {
    finish_later(op, -ENOENT);
    return;
  }
  d->refs--;
  pub_sync(u);
  if (d->refs > 0 || !d->mounted || d->remove_json == NULL) {
    finish_later(op, 0);
    return;
  }
  send_modify(op, d->remove_json);
}

/* ------------------------------------------------------------------------ */
/* The queue */

static void run_next(hcsb_uvm_t *u) {
  hcsb__uvm_op_t *op;
  if (hcsb__list_empty(&u->vpmem_queue)) return;
  op = HCSB__CONTAINER_OF(u->vpmem_queue.next, hcsb__uvm_op_t, link);
  if (op->step != S_QUEUED) return; /* running */
  op->deadline = uv_now(u->loop) + u->cfg.vpmem_timeout_ms;
  if (op->kind == OP_ADD)
    run_add(op);
  else
    run_remove(op);
}

static void kick_deferred(hcsb__defer_t *d) {
  hcsb__uvm_op_t *op = HCSB__CONTAINER_OF(d, hcsb__uvm_op_t, defer);
  run_next(op->u);
}

static hcsb__uvm_op_t *op_new(hcsb_uvm_t *u, int kind, hcsb__vpmem_done done,
                              void *data) {
  hcsb__uvm_op_t *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->u = u;
  op->kind = kind;
  op->done = done;
  op->data = data;
  op->refs = 1; /* the queue's */
  hcsb__defer_init(&op->defer);
  return op;
}

static void op_queue(hcsb_uvm_t *u, hcsb__uvm_op_t *op) {
  int first = hcsb__list_empty(&u->vpmem_queue);
  hcsb__handle_ref(&u->h);
  hcsb__list_push(&u->vpmem_queue, &op->link);
  /* Started from the loop, never inside the caller's call. */
  if (first) hcsb__uvm_defer(u, &op->defer, kick_deferred);
}

static int dup_or(char **out, const char *s) {
  *out = NULL;
  if (s == NULL) return 0;
  return (*out = strdup(s)) != NULL ? 0 : -ENOMEM;
}

int hcsb__vpmem_add(hcsb_uvm_t *u, const char *image,
                    const hcsb_uvm_vpmem_opts_t *opts, hcsb__vpmem_done done,
                    void *data) {
  hcsb__uvm_op_t *op;
  char *probe = NULL;
  int rc;

  if (u->closing || u->step != HCSB__STEP_RUNNING || u->conn == NULL)
    return -ENOTCONN;
  if (image == NULL || image[0] != '/') {
    hcsb__uvm_log(u, HCSB_LOG_ERROR, "VPMem image %s: an absolute path, please",
                  image != NULL ? image : "(null)");
    return -EINVAL;
  }
  op = op_new(u, OP_ADD, done, data);
  if (op == NULL) return -ENOMEM;
  if (stat(image, &op->st) != 0) {
    rc = -errno;
    hcsb__uvm_log(u, HCSB_LOG_ERROR, "VPMem image %s: %s", image,
                  strerror(errno));
    goto fail;
  }
  if (!S_ISREG(op->st.st_mode) || op->st.st_size == 0 ||
      op->st.st_size % HCSB__UVM_VPMEM_ALIGN != 0) {
    uint64_t sz = (uint64_t)op->st.st_size;
    uint64_t up = (sz + HCSB__UVM_VPMEM_ALIGN - 1) / HCSB__UVM_VPMEM_ALIGN *
                  HCSB__UVM_VPMEM_ALIGN;
    if (!S_ISREG(op->st.st_mode))
      hcsb__uvm_log(u, HCSB_LOG_ERROR, "VPMem image %s: not a regular file",
                    image);
    else
      hcsb__uvm_log(u, HCSB_LOG_ERROR,
                    "VPMem image %s is %llu bytes, not a non-zero multiple of "
                    "2 MiB (QEMU and the guest map it in 2 MiB pages): pad it "
                    "with `truncate -s %llu %s`",
                    image, (unsigned long long)sz,
                    (unsigned long long)(up ? up : HCSB__UVM_VPMEM_ALIGN),
                    image);
    rc = -EINVAL;
    goto fail;
  }
  if (opts != NULL) {
    const hcsb_verity_info_t *v = opts->verity;
    if (dup_or(&op->mount_path, opts->mount_path) != 0) goto oom;
    if (opts->mount_path != NULL && opts->mount_path[0] != '/') {
      rc = -EINVAL;
      goto fail;
    }
    op->has_mapping = opts->has_mapping;
    op->map_offset = opts->device_offset_bytes;
    op->map_size = opts->device_size_bytes;
    if (v != NULL) {
      op->has_verity = 1;
      op->verity = *v;
      if (dup_or(&op->v_digest, v->root_digest) != 0 ||
          dup_or(&op->v_salt, v->salt) != 0 ||
          dup_or(&op->v_alg, v->hash_algorithm) != 0)
        goto oom;
      op->verity.root_digest = op->v_digest;
      op->verity.salt = op->v_salt;
      op->verity.hash_algorithm = op->v_alg;
    }
    if (opts->call_opts != NULL) {
      if (opts->call_opts->activity_id != NULL)
        snprintf(op->activity_id, sizeof op->activity_id, "%s",
                 opts->call_opts->activity_id);
      op->call_timeout_ms = opts->call_opts->timeout_ms;
    }
  }
  /* What the guest would be sent must be sendable: check it now. */
  rc = build_request(op, HCSB_REQUEST_ADD, 0, "/run/layers/check", &probe);
  hcsb_free(probe);
  if (rc != 0) goto fail;
  if (dup_or(&op->image, image) != 0) goto oom;
  if (dev_find_image(u, &op->st) == NULL && u->ndevs >= u->cfg.vpmem_slots) {
    hcsb__uvm_log(u, HCSB_LOG_ERROR, "no VPMem slot left for %s (%u in all)",
                  image, (unsigned)u->cfg.vpmem_slots);
    rc = -ENOSPC;
    goto fail;
  }
  op_queue(u, op);
  return 0;
oom:
  rc = -ENOMEM;
fail:
  op_free(op);
  return rc;
}

int hcsb__vpmem_remove(hcsb_uvm_t *u, uint32_t device_number,
                       hcsb__vpmem_done done, void *data) {
  hcsb__uvm_op_t *op;

  if (u->closing || u->step != HCSB__STEP_RUNNING || u->conn == NULL)
    return -ENOTCONN;
  if (device_number >= u->ndevs || u->devs[device_number].refs == 0)
    return -ENOENT;
  op = op_new(u, OP_REMOVE, done, data);
  if (op == NULL) return -ENOMEM;
  op->dev = device_number;
  op_queue(u, op);
  return 0;
}

void hcsb__vpmem_fail_all(hcsb_uvm_t *u, int status) {
  hcsb__link_t *l, *next;
  for (l = u->vpmem_queue.next; l != &u->vpmem_queue; l = next) {
    hcsb__uvm_op_t *op = HCSB__CONTAINER_OF(l, hcsb__uvm_op_t, link);
    next = l->next;
    finish_later(op, status);
  }
}

int hcsb__vpmem_busy(const hcsb_uvm_t *u) {
  return !hcsb__list_empty(&u->vpmem_queue);
}

void hcsb__vpmem_free(hcsb_uvm_t *u) {
  for (size_t i = 0; i < u->ndevs; i++) {
    free(u->devs[i].image);
    free(u->devs[i].mount_path);
    free(u->devs[i].verity);
    hcsb_free(u->devs[i].remove_json);
  }
  free(u->devs);
  free(u->pubs);
  u->devs = NULL;
  u->pubs = NULL;
  u->ndevs = u->devs_cap = 0;
}

/* ------------------------------------------------------------------------ */
/* The public calls */

typedef struct pub_s {
  hcsb_uvm_t *u;
  hcsb_uvm_vpmem_cb cb;
  hcsb_done_cb done_cb;
  void *data;
} pub_t;

static void pub_added(void *data, int status, const hcsb_guest_error_t *gerr,
                      uint32_t devno) {
  pub_t *p = data;
  hcsb_uvm_t *u = p->u;
  hcsb_uvm_vpmem_t dev;
  const hcsb_uvm_vpmem_t *dp = NULL;

  if (status == 0 && devno < u->ndevs) {
    dev = u->pubs[devno];
    dp = &dev;
  }
  if (p->cb != NULL) p->cb(p->data, u, status, gerr, dp);
  free(p);
}

static void pub_removed(void *data, int status, const hcsb_guest_error_t *gerr,
                        uint32_t devno) {
  pub_t *p = data;
  (void)devno;
  if (p->done_cb != NULL) p->done_cb(p->data, status, gerr);
  free(p);
}

int hcsb_uvm_add_vpmem(hcsb_uvm_t *u, const char *image_path,
                       const hcsb_uvm_vpmem_opts_t *opts, hcsb_uvm_vpmem_cb cb,
                       void *data) {
  pub_t *p;
  int rc;
  if (u == NULL) return -EINVAL;
  p = calloc(1, sizeof *p);
  if (p == NULL) return -ENOMEM;
  p->u = u;
  p->cb = cb;
  p->data = data;
  rc = hcsb__vpmem_add(u, image_path, opts, pub_added, p);
  if (rc != 0) free(p);
  return rc;
}

int hcsb_uvm_remove_vpmem(hcsb_uvm_t *u, uint32_t device_number,
                          hcsb_done_cb cb, void *data) {
  pub_t *p;
  int rc;
  if (u == NULL) return -EINVAL;
  p = calloc(1, sizeof *p);
  if (p == NULL) return -ENOMEM;
  p->u = u;
  p->done_cb = cb;
  p->data = data;
  rc = hcsb__vpmem_remove(u, device_number, pub_removed, p);
  if (rc != 0) free(p);
  return rc;
}

size_t hcsb_uvm_vpmem_devices(const hcsb_uvm_t *u,
                              const hcsb_uvm_vpmem_t **out) {
  if (out != NULL) *out = u->ndevs ? u->pubs : NULL;
  return u->ndevs;
}
