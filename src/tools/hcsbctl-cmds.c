/* hcsbctl: the container workflow and the UVM-level commands
 * (create, kill, wait, ps, stats, shutdown, delete, modify, stacks, caps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcsbctl.h"

#define CTL_MAX_INPUT_FILE (16u * 1024u * 1024u)

enum {
  OPT_JSON = 1,
  OPT_SPEC,
  OPT_LAYER,
  OPT_SCRATCH,
  OPT_PID,
  OPT_SIGNAL,
  OPT_FORCE,
  OPT_LAYER_IMAGE,
  OPT_MAX
};

/* Parsed arguments of the simple commands: option values by id, operands. */
typedef struct parsed_s {
  ctl_args_t a;
  const char *val[OPT_MAX];
  const char **list; /* the repeatable option's values */
  size_t nlist;
  const char **images; /* create --layer-image values */
  size_t nimages;
} parsed_t;

/* Returns -1 to go on, or the exit status (help printed, usage error). */
static int parse(ctl_t *ctl, const char *cmd, int argc, char **argv,
                 const ctl_opt_t *opts, int list_id, int nops, parsed_t *p) {
  memset(p, 0, sizeof(*p));
  p->list = calloc((size_t)argc + 1, sizeof(*p->list));
  p->images = calloc((size_t)argc + 1, sizeof(*p->images));
  if (p->list == NULL || p->images == NULL ||
      ctl_args_init(&p->a, cmd, argc, argv, 0) != 0) {
    ctl_errorf(ctl, "out of memory");
    return CTL_EXIT_FAILED;
  }
  const char *arg;
  int id;
  while ((id = ctl_getopt(ctl, &p->a, opts, &arg)) != 0) {
    if (id == -1) return ctl_cmd_help(ctl, cmd), CTL_EXIT_OK;
    if (id == -2) return CTL_EXIT_USAGE;
    if (id == OPT_JSON) ctl->line_json = 1;
    if (id == list_id)
      p->list[p->nlist++] = arg;
    else if (id == OPT_LAYER_IMAGE)
      p->images[p->nimages++] = arg;
    else
      p->val[id] = arg ? arg : "";
  }
  if (p->a.noperands < nops)
    return ctl_usage_error(ctl, cmd, "a container ID is needed");
  if (p->a.noperands > nops)
    return ctl_usage_error(ctl, cmd, "unexpected argument '%s'",
                           p->a.operands[nops]);
  return -1;
}

/* parse(), then the connection: -1 to go on, or the exit status (help
 * printed, usage error, connection failed).  --help never connects. */
static int parse_connect(ctl_t *ctl, const char *cmd, int argc, char **argv,
                         const ctl_opt_t *opts, int nops, parsed_t *p) {
  int st = parse(ctl, cmd, argc, argv, opts, 0, nops, p);
  if (st < 0 && (st = ctl_need_conn(ctl)) == 0) st = -1;
  return st;
}

static void parsed_free(parsed_t *p) {
  free(p->list);
  free(p->images);
  ctl_args_free(&p->a);
}

static void container_closed(void *data) {
  *(int *)data = 1;
}

/* ------------------------------------------------------------------------ */
/* create */

static void container_created(void *data, hcsb_container_t *c, int status,
                              const hcsb_guest_error_t *gerr) {
  ctl_op_record(data, status, gerr);
}

/* hcsb_uvm_create_container hands the handle to its callback. */
static void uvm_container_created(void *data, hcsb_container_t *c, int status,
                                  const hcsb_guest_error_t *gerr) {
  ctl_op_t *op = data;
  op->container = c;
  ctl_op_record(op, status, gerr);
}

static int do_create(ctl_t *ctl, parsed_t *p) {
  const char *id = p->a.operands[0];
  if (p->val[OPT_SPEC] == NULL)
    return ctl_usage_error(ctl, "create", "--spec FILE is needed");
  char *spec;
  int rc = ctl_read_file(p->val[OPT_SPEC], CTL_MAX_INPUT_FILE, &spec, NULL);
  if (rc != 0) {
    ctl_errorf(ctl, "create: cannot read %s: %s", p->val[OPT_SPEC],
               strerror(-rc));
    return CTL_EXIT_USAGE;
  }
  if (p->nimages && p->nlist) {
    free(spec);
    return ctl_usage_error(ctl, "create",
                           "--layer and --layer-image exclude each other");
  }
  if (p->nimages && !ctl->uvm) {
    free(spec);
    return ctl_usage_error(ctl, "create",
                           "--layer-image needs a utility VM (--uvm)");
  }
  if ((rc = ctl_need_conn(ctl)) != 0) {
    free(spec);
    return rc;
  }
  hcsb_container_config_t cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = id;
  cfg.oci_spec_json = spec;
  cfg.layers = p->list;
  cfg.nlayers = p->nlist;
  /* hcsshim uses the one scratch directory for both. */
  cfg.scratch_dir = p->val[OPT_SCRATCH];
  if (p->nlist) cfg.layer_scratch_path = p->val[OPT_SCRATCH];

  ctl_op_t op;
  ctl_op_init(&op);
  hcsb_call_opts_t opts = ctl_call_opts(ctl);
  hcsb_container_t *c = NULL;
  if (p->nimages) {
    /* Each image becomes a VPMem device, then the overlay over them. */
    hcsb_uvm_layer_t *layers = calloc(p->nimages, sizeof(*layers));
    if (layers == NULL) {
      free(spec);
      return ctl_report(ctl, "create", -ENOMEM, NULL);
    }
    for (size_t i = 0; i < p->nimages; i++) layers[i].image_path = p->images[i];
    cfg.layer_scratch_path = p->val[OPT_SCRATCH];
    rc = hcsb_uvm_create_container(ctl->vm, &opts, &cfg, layers, p->nimages,
                                   uvm_container_created, &op, NULL);
    free(layers);
  } else {
    rc = hcsb_conn_create_container(ctl->conn, &opts, &cfg, container_created,
                                    &op, &c);
  }
  free(spec); /* the library copies what it keeps */
  if (rc == -EINVAL) {
    ctl_errorf(ctl,
               "create: invalid container configuration (is %s an OCI spec?)",
               p->val[OPT_SPEC]);
    return CTL_EXIT_USAGE;
  }
  if (rc != 0) return ctl_report(ctl, "create", rc, NULL);
  int st = ctl_op_finish(ctl, &op, "create");
  if (p->nimages) c = op.container;
  if (st != 0) {
    int closed = 0;
    if (c != NULL) {
      hcsb_container_close(c, container_closed, &closed);
      ctl_await(ctl, &closed);
    }
    return st;
  }
  ctl_container_add(ctl, c);
  return CTL_EXIT_OK;
}

int ctl_cmd_create(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{"spec", 0, 1, OPT_SPEC},
                                   {"layer", 0, 1, OPT_LAYER},
                                   {"layer-image", 0, 1, OPT_LAYER_IMAGE},
                                   {"scratch", 0, 1, OPT_SCRATCH},
                                   {NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse(ctl, "create", argc, argv, opts, OPT_LAYER, 1, &p);
  if (st < 0) st = do_create(ctl, &p);
  parsed_free(&p);
  return st;
}

/* ------------------------------------------------------------------------ */
/* kill */

typedef struct kill_s {
  ctl_op_t op;
  int delivered;
} kill_t;

static void killed(void *data, int status, const hcsb_guest_error_t *gerr,
                   int delivered) {
  kill_t *k = data;
  k->delivered = delivered;
  ctl_op_record(&k->op, status, gerr);
}

static int do_kill(ctl_t *ctl, parsed_t *p) {
  const char *id = p->a.operands[0];
  int signum = 15;
  uint32_t pid = 0;
  if (p->val[OPT_SIGNAL] && (signum = ctl_parse_signal(p->val[OPT_SIGNAL])) < 0)
    return ctl_usage_error(ctl, "kill", "unknown signal '%s'",
                           p->val[OPT_SIGNAL]);
  if (p->val[OPT_PID] &&
      (ctl_parse_u32(p->val[OPT_PID], &pid) != 0 || pid == 0))
    return ctl_usage_error(ctl, "kill", "invalid PID '%s'", p->val[OPT_PID]);
  int st = ctl_need_conn(ctl);
  if (st != 0) return st;
  ctl_container_t *ct = ctl_container_get(ctl, id);
  if (ct == NULL) return CTL_EXIT_FAILED;

  hcsb_process_t *proc = ct->init;
  int opened = 0;
  if (pid && (proc == NULL || hcsb_process_pid(proc) != pid)) {
    int rc = hcsb_container_open_process(ct->handle, pid, &proc);
    if (rc != 0) return ctl_report(ctl, "kill", rc, NULL);
    opened = 1;
  }
  if (proc == NULL) {
    ctl_errorf(ctl,
               "kill: the init process of %s was not started in this session; "
               "give --pid",
               id);
    return CTL_EXIT_FAILED;
  }
  kill_t k;
  memset(&k, 0, sizeof(k));
  ctl_op_init(&k.op);
  hcsb_call_opts_t opts = ctl_call_opts(ctl);
  int rc = hcsb_process_signal(proc, &opts, signum, killed, &k);
  st = rc != 0 ? ctl_report(ctl, "kill", rc, NULL)
               : ctl_op_finish(ctl, &k.op, "kill");
  if (st == 0 && !k.delivered) {
    ctl_errorf(ctl, "kill: process %u is not running", hcsb_process_pid(proc));
    st = CTL_EXIT_FAILED;
  }
  if (opened) ctl_process_close_sync(ctl, proc);
  return st;
}

int ctl_cmd_kill(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{"pid", 'p', 1, OPT_PID},
                                   {"signal", 's', 1, OPT_SIGNAL},
                                   {NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse(ctl, "kill", argc, argv, opts, 0, 1, &p);
  if (st < 0) st = do_kill(ctl, &p);
  parsed_free(&p);
  return st;
}

/* ------------------------------------------------------------------------ */
/* ps, stats */

typedef struct props_s {
  ctl_op_t op;
  ctl_t *ctl;
  ctl_buf_t text;
} props_t;

static void ps_format(props_t *pr, const hcsb_properties_t *props) {
  ctl_buf_t *b = &pr->text;
  if (ctl_want_json(pr->ctl)) {
    ctl_buf_printf(b, "{\"ProcessList\":[");
    for (size_t i = 0; i < props->nprocesses; i++) {
      const hcsb_process_list_item_t *it = &props->processes[i];
      ctl_buf_printf(b, "%s{\"ProcessId\":%u", i ? "," : "", it->process_id);
      if (it->image_name) {
        ctl_buf_printf(b, ",\"ImageName\":");
        ctl_buf_json_str(b, it->image_name);
      }
      ctl_buf_printf(b,
                     ",\"KernelTime100ns\":%llu,\"UserTime100ns\":%llu,"
                     "\"MemoryCommitBytes\":%llu}",
                     (unsigned long long)it->kernel_time_100ns,
                     (unsigned long long)it->user_time_100ns,
                     (unsigned long long)it->memory_commit_bytes);
    }
    ctl_buf_printf(b, "]}\n");
    return;
  }
  ctl_buf_printf(b, "%8s %10s %10s %12s  %s\n", "PID", "KERNEL_MS", "USER_MS",
                 "MEMORY", "IMAGE");
  for (size_t i = 0; i < props->nprocesses; i++) {
    const hcsb_process_list_item_t *it = &props->processes[i];
    ctl_buf_printf(b, "%8u %10llu %10llu %12llu  %s\n", it->process_id,
                   (unsigned long long)(it->kernel_time_100ns / 10000),
                   (unsigned long long)(it->user_time_100ns / 10000),
                   (unsigned long long)it->memory_commit_bytes,
                   it->image_name ? it->image_name : "-");
  }
}

/* One group of statistics: {"Name":{"Key":v,...}} or "name.key v" lines. */
static void stats_group(props_t *pr, int *first, const char *name,
                        const char *const *keys, const uint64_t *vals,
                        size_t n) {
  ctl_buf_t *b = &pr->text;
  if (ctl_want_json(pr->ctl)) {
    ctl_buf_printf(b, "%s\"%s\":{", *first ? "" : ",", name);
    for (size_t i = 0; i < n; i++)
      ctl_buf_printf(b, "%s\"%s\":%llu", i ? "," : "", keys[i],
                     (unsigned long long)vals[i]);
    ctl_buf_printf(b, "}");
  } else {
    for (size_t i = 0; i < n; i++)
      ctl_buf_printf(b, "%s.%s %llu\n", name, keys[i],
                     (unsigned long long)vals[i]);
  }
  *first = 0;
}

static void stats_format(props_t *pr, const hcsb_properties_t *props) {
  const hcsb_statistics_t *s = &props->statistics;
  int json = ctl_want_json(pr->ctl), first = 1;
  if (json) ctl_buf_printf(&pr->text, "{");
  if (s->has_cpu) {
    static const char *const k[] = {"TotalNs", "UserNs", "KernelNs",
                                    "ThrottledPeriods", "ThrottledTimeNs"};
    uint64_t v[] = {s->cpu_total_ns, s->cpu_user_ns, s->cpu_kernel_ns,
                    s->cpu_throttled_periods, s->cpu_throttled_time_ns};
    stats_group(pr, &first, "Cpu", k, v, 5);
  }
  if (s->has_memory) {
    static const char *const k[] = {"UsageBytes", "MaxUsageBytes", "LimitBytes",
                                    "CacheBytes", "RssBytes"};
    uint64_t v[] = {s->memory_usage_bytes, s->memory_max_usage_bytes,
                    s->memory_limit_bytes, s->memory_cache_bytes,
                    s->memory_rss_bytes};
    stats_group(pr, &first, "Memory", k, v, 5);
  }
  if (s->has_pids) {
    static const char *const k[] = {"Current", "Limit"};
    uint64_t v[] = {s->pids_current, s->pids_limit};
    stats_group(pr, &first, "Pids", k, v, 2);
  }
  if (s->has_blkio) {
    static const char *const k[] = {"ReadBytes", "WriteBytes", "ReadOps",
                                    "WriteOps"};
    uint64_t v[] = {s->blkio_read_bytes, s->blkio_write_bytes,
                    s->blkio_read_ops, s->blkio_write_ops};
    stats_group(pr, &first, "Blkio", k, v, 4);
  }
  /* Then everything the guest sent, typed (hcsbridge/metrics.h). */
  if (props->metrics != NULL) {
    if (json) ctl_buf_printf(&pr->text, "%s\"Metrics\":", first ? "" : ",");
    ctl_format_metrics(&pr->text, props->metrics, json);
  }
  if (json) ctl_buf_printf(&pr->text, "}\n");
}

static void ps_done(void *data, int status, const hcsb_guest_error_t *gerr,
                    const hcsb_properties_t *props) {
  props_t *pr = data;
  if (status == 0) ps_format(pr, props);
  ctl_op_record(&pr->op, status, gerr);
}

static void stats_done(void *data, int status, const hcsb_guest_error_t *gerr,
                       const hcsb_properties_t *props) {
  props_t *pr = data;
  if (status == 0) stats_format(pr, props);
  ctl_op_record(&pr->op, status, gerr);
}

static int properties(ctl_t *ctl, int argc, char **argv, const char *cmd,
                      int stats) {
  static const ctl_opt_t opts[] = {{"json", 0, 0, OPT_JSON}, {NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse_connect(ctl, cmd, argc, argv, opts, 1, &p);
  ctl_container_t *ct = st < 0 ? ctl_container_get(ctl, p.a.operands[0]) : NULL;
  parsed_free(&p);
  if (st >= 0) return st;
  if (ct == NULL) return CTL_EXIT_FAILED;
  props_t pr;
  memset(&pr, 0, sizeof(pr));
  pr.ctl = ctl;
  ctl_op_init(&pr.op);
  hcsb_call_opts_t copts = ctl_call_opts(ctl);
  int rc = stats
               ? hcsb_container_statistics(ct->handle, &copts, stats_done, &pr)
               : hcsb_container_process_list(ct->handle, &copts, ps_done, &pr);
  st = rc != 0 ? ctl_report(ctl, cmd, rc, NULL)
               : ctl_op_finish(ctl, &pr.op, cmd);
  if (st == 0) ctl_out(ctl, pr.text.data, pr.text.len);
  ctl_buf_free(&pr.text);
  return st;
}

int ctl_cmd_ps(ctl_t *ctl, int argc, char **argv) {
  return properties(ctl, argc, argv, "ps", 0);
}

int ctl_cmd_stats(ctl_t *ctl, int argc, char **argv) {
  return properties(ctl, argc, argv, "stats", 1);
}

/* ------------------------------------------------------------------------ */
/* wait */

typedef struct wait_s {
  int done;
  int status;
  hcsb_container_end_t end;
  char type[32];
  uint32_t result;
} wait_t;

static void container_waited(void *data, hcsb_container_t *c, int status,
                             const hcsb_container_exit_t *exit) {
  wait_t *w = data;
  w->status = status;
  if (exit) {
    w->end = exit->end;
    snprintf(w->type, sizeof(w->type), "%s",
             exit->type_name ? exit->type_name : "");
    w->result = exit->result;
  }
  w->done = 1;
}

static void list_done(void *data, int status, const hcsb_guest_error_t *gerr,
                      const hcsb_properties_t *props) {
  ctl_op_record(data, status, gerr);
}

static int do_wait(ctl_t *ctl, const char *id) {
  ctl_container_t *ct = ctl_container_get(ctl, id);
  if (ct == NULL) return CTL_EXIT_FAILED;
  if (ct->init == NULL) {
    /* A container this session neither created nor started may not exist
     * at all, and then no notification would ever come: ask first. */
    ctl_op_t op;
    ctl_op_init(&op);
    hcsb_call_opts_t opts = ctl_call_opts(ctl);
    int rc = hcsb_container_process_list(ct->handle, &opts, list_done, &op);
    int st = rc ? ctl_report(ctl, "wait", rc, NULL)
                : ctl_op_finish(ctl, &op, "wait");
    if (st != 0) return st;
  }
  wait_t w;
  memset(&w, 0, sizeof(w));
  int rc =
      hcsb_container_wait(ct->handle, ctl->timeout_ms, container_waited, &w);
  if (rc != 0) return ctl_report(ctl, "wait", rc, NULL);
  ctl_await(ctl, &w.done);

  int json = ctl_want_json(ctl);
  ctl_buf_t b = {0};
  int st = CTL_EXIT_OK;
  if (w.status == 0 && w.end == HCSB_CONTAINER_EXITED) {
    uint32_t code = 0;
    int have_code = ct->init && hcsb_process_exit_code(ct->init, &code) == 0;
    if (json) {
      ctl_buf_printf(&b, "{\"Id\":");
      ctl_buf_json_str(&b, id);
      ctl_buf_printf(&b, ",\"End\":\"Exited\",\"Type\":");
      ctl_buf_json_str(&b, w.type);
      ctl_buf_printf(&b, ",\"Result\":%u", w.result);
      if (have_code) ctl_buf_printf(&b, ",\"InitExitCode\":%u", code);
      ctl_buf_printf(&b, "}\n");
    } else {
      ctl_buf_printf(&b, "%s exited: %s (Result 0x%08X", id, w.type, w.result);
      if (have_code) ctl_buf_printf(&b, ", init exit code %u", code);
      ctl_buf_printf(&b, ")\n");
    }
  } else if (w.status == -ETIMEDOUT) {
    ctl_errorf(ctl, "wait: timed out waiting for %s to exit", id);
    st = CTL_EXIT_TIMEOUT;
  } else {
    int lost = w.end == HCSB_CONTAINER_CONNECTION_LOST;
    if (json && lost) {
      ctl_buf_printf(&b, "{\"Id\":");
      ctl_buf_json_str(&b, id);
      ctl_buf_printf(&b, ",\"End\":\"ConnectionLost\"}\n");
    }
    st = lost ? CTL_EXIT_CONN : ctl_exit_status(w.status);
    ctl_errorf(
        ctl, "wait: %s: %s",
        lost ? "connection lost before the container exited" : "the wait ended",
        hcsb_strerror(w.status));
  }
  ctl_out(ctl, b.data, b.len);
  ctl_buf_free(&b);
  return st;
}

int ctl_cmd_wait(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{"json", 0, 0, OPT_JSON}, {NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse_connect(ctl, "wait", argc, argv, opts, 1, &p);
  if (st < 0) st = do_wait(ctl, p.a.operands[0]);
  parsed_free(&p);
  return st;
}

/* ------------------------------------------------------------------------ */
/* shutdown, delete */

int ctl_cmd_shutdown(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{"force", 'f', 0, OPT_FORCE},
                                   {NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse_connect(ctl, "shutdown", argc, argv, opts, 1, &p);
  ctl_container_t *ct = st < 0 ? ctl_container_get(ctl, p.a.operands[0]) : NULL;
  int force = p.val[OPT_FORCE] != NULL;
  parsed_free(&p);
  if (st >= 0) return st;
  if (ct == NULL) return CTL_EXIT_FAILED;
  ctl_op_t op;
  ctl_op_init(&op);
  hcsb_call_opts_t opts2 = ctl_call_opts(ctl);
  int rc =
      force ? hcsb_container_terminate(ct->handle, &opts2, ctl_op_done_cb, &op)
            : hcsb_container_shutdown(ct->handle, &opts2, ctl_op_done_cb, &op);
  return rc ? ctl_report(ctl, "shutdown", rc, NULL)
            : ctl_op_finish(ctl, &op, "shutdown");
}

int ctl_cmd_delete(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse_connect(ctl, "delete", argc, argv, opts, 1, &p);
  if (st < 0) {
    const char *id = p.a.operands[0];
    ctl->container = id;
    ctl_op_t op;
    ctl_op_init(&op);
    hcsb_call_opts_t copts = ctl_call_opts(ctl);
    /* With a VM, its layer devices are released after the delete. */
    int rc = ctl->vm ? hcsb_uvm_delete_container(ctl->vm, &copts, id,
                                                 ctl_op_done_cb, &op)
                     : hcsb_conn_delete_container_state(ctl->conn, &copts, id,
                                                        ctl_op_done_cb, &op);
    st = rc ? ctl_report(ctl, "delete", rc, NULL)
            : ctl_op_finish(ctl, &op, "delete");
    ctl_container_t *ct = ctl_container_find(ctl, id);
    if (st == 0 && ct)
      ctl_container_forget(ctl, ct); /* nothing left to talk to */
  }
  parsed_free(&p);
  return st;
}

/* ------------------------------------------------------------------------ */
/* modify, stacks, caps */

int ctl_cmd_modify(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{"json", 0, 1, OPT_JSON}, {NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse(ctl, "modify", argc, argv, opts, 0, 0, &p);
  const char *file = p.val[OPT_JSON];
  ctl->line_json = 0; /* here --json names the request, not the output */
  if (st < 0 && file == NULL)
    st = ctl_usage_error(ctl, "modify", "--json FILE is needed");
  if (st < 0 && strcmp(file, "-") == 0 && ctl->stdin_is_script)
    st = ctl_usage_error(ctl, "modify", "stdin carries the script");
  char *req = NULL;
  if (st < 0) {
    int rc = ctl_read_file(file, CTL_MAX_INPUT_FILE, &req, NULL);
    if (rc != 0) {
      ctl_errorf(ctl, "modify: cannot read %s: %s", file, strerror(-rc));
      st = CTL_EXIT_USAGE;
    }
  }
  if (st < 0 && (st = ctl_need_conn(ctl)) == 0) st = -1;
  parsed_free(&p);
  if (st >= 0) {
    free(req);
    return st;
  }
  ctl_op_t op;
  ctl_op_init(&op);
  hcsb_call_opts_t copts = ctl_call_opts(ctl);
  int rc = hcsb_conn_modify(ctl->conn, &copts, req, ctl_op_done_cb, &op);
  free(req);
  if (rc == -EINVAL) {
    ctl_errorf(ctl, "modify: the request is not a JSON object");
    return CTL_EXIT_USAGE;
  }
  return rc ? ctl_report(ctl, "modify", rc, NULL)
            : ctl_op_finish(ctl, &op, "modify");
}

typedef struct stacks_s {
  ctl_op_t op;
  ctl_buf_t text;
} stacks_t;

static void stacks_done(void *data, int status, const hcsb_guest_error_t *gerr,
                        const char *stacks, size_t len) {
  stacks_t *s = data;
  if (status == 0 && stacks) {
    ctl_buf_append(&s->text, stacks, len);
    if (len == 0 || stacks[len - 1] != '\n') ctl_buf_append(&s->text, "\n", 1);
  }
  ctl_op_record(&s->op, status, gerr);
}

int ctl_cmd_stacks(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse_connect(ctl, "stacks", argc, argv, opts, 0, &p);
  parsed_free(&p);
  if (st >= 0) return st;
  stacks_t s;
  memset(&s, 0, sizeof(s));
  ctl_op_init(&s.op);
  hcsb_call_opts_t copts = ctl_call_opts(ctl);
  int rc = hcsb_conn_dump_stacks(ctl->conn, &copts, stacks_done, &s);
  st = rc ? ctl_report(ctl, "stacks", rc, NULL)
          : ctl_op_finish(ctl, &s.op, "stacks");
  if (st == 0) ctl_out(ctl, s.text.data, s.text.len);
  ctl_buf_free(&s.text);
  return st;
}

static const char *yes(int b) {
  return b ? "true" : "false";
}

int ctl_cmd_caps(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{"json", 0, 0, OPT_JSON}, {NULL, 0, 0, 0}};
  parsed_t p;
  int st = parse_connect(ctl, "caps", argc, argv, opts, 0, &p);
  parsed_free(&p);
  if (st >= 0) return st;
  const hcsb_caps_t *c = hcsb_conn_caps(ctl->conn);
  if (c == NULL) return ctl_report(ctl, "caps", -ENOTCONN, NULL);
  const struct {
    const char *name;
    int value;
  } top[] = {{"SendHostCreateMessage", c->send_host_create_message},
             {"SendHostStartMessage", c->send_host_start_message},
             {"HvSocketConfigOnStartup", c->hvsocket_config_on_startup},
             {"SendLifecycleNotifications", c->send_lifecycle_notifications},
             {"ModifyServiceSettingsSupported",
              c->modify_service_settings_supported}},
    guest[] = {
        {"NamespaceAddRequestSupported",
         c->guest.namespace_add_request_supported},
        {"SignalProcessSupported", c->guest.signal_process_supported},
        {"DumpStacksSupported", c->guest.dump_stacks_supported},
        {"DeleteContainerStateSupported",
         c->guest.delete_container_state_supported},
        {"UpdateContainerSupported", c->guest.update_container_supported},
        {"LogForwardingSupported", c->guest.log_forwarding_supported},
        {"HostProcessContainerSupported",
         c->guest.host_process_container_supported}};
  const size_t ntop = sizeof(top) / sizeof(top[0]),
               nguest = sizeof(guest) / sizeof(guest[0]);
  ctl_buf_t b = {0};
  if (ctl_want_json(ctl)) {
    ctl_buf_printf(&b,
                   "{\"Version\":%u,\"Os\":", hcsb_conn_protocol(ctl->conn));
    ctl_buf_json_str(&b, hcsb_conn_os(ctl->conn));
    ctl_buf_printf(&b, ",\"Capabilities\":{\"RuntimeOsType\":");
    ctl_buf_json_str(&b, c->runtime_os_type);
    ctl_buf_printf(&b, ",\"SupportedSchemaVersions\":[");
    for (size_t i = 0; i < c->nschema_versions; i++)
      ctl_buf_printf(&b, "%s{\"Major\":%u,\"Minor\":%u}", i ? "," : "",
                     c->schema_versions[i].major, c->schema_versions[i].minor);
    ctl_buf_printf(&b, "]");
    for (size_t i = 0; i < ntop; i++)
      ctl_buf_printf(&b, ",\"%s\":%s", top[i].name, yes(top[i].value));
    ctl_buf_printf(&b, ",\"GuestDefinedCapabilities\":{");
    for (size_t i = 0; i < nguest; i++)
      ctl_buf_printf(&b, "%s\"%s\":%s", i ? "," : "", guest[i].name,
                     yes(guest[i].value));
    ctl_buf_printf(&b, "}}}\n");
  } else {
    ctl_buf_printf(&b, "Protocol version: %u\nOS: %s (RuntimeOsType \"%s\")\n",
                   hcsb_conn_protocol(ctl->conn), hcsb_conn_os(ctl->conn),
                   c->runtime_os_type);
    ctl_buf_printf(&b, "Supported schema versions:");
    for (size_t i = 0; i < c->nschema_versions; i++)
      ctl_buf_printf(&b, " %u.%u", c->schema_versions[i].major,
                     c->schema_versions[i].minor);
    ctl_buf_printf(&b, "\nCapabilities:\n");
    for (size_t i = 0; i < ntop; i++)
      ctl_buf_printf(&b, "  %s: %s\n", top[i].name, yes(top[i].value));
    ctl_buf_printf(&b, "Guest-defined capabilities:\n");
    for (size_t i = 0; i < nguest; i++)
      ctl_buf_printf(&b, "  %s: %s\n", guest[i].name, yes(guest[i].value));
  }
  ctl_out(ctl, b.data, b.len);
  ctl_buf_free(&b);
  return CTL_EXIT_OK;
}
