/* Fault matrix: the guest's byte stream ends at every offset of a recorded
 * session while calls are pending.  Whatever the offset, every callback
 * fires exactly once: answered calls with what the recording says, the
 * others with the connection-loss status; container waits report the loss
 * (never a fake exit); nothing is left in the loop (and the sanitizer and
 * valgrind runs check nothing leaked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"

/* Under valgrind and ASan: every offset inside a header or next to a frame
 * end, and a stride through bodies. */
static int offset_wanted(const ftrans_t *t, size_t k) {
  if (!faults_slow()) return 1;
  for (size_t i = 0; i < t->n; i++) {
    if (k >= t->f[i].off && k <= t->f[i].off + 17) return 1;
    if (k + 1 == t->f[i].end || k == t->f[i].end) return 1;
  }
  return k % 97 == 0;
}

static int32_t recorded_result(const char *body, size_t len) {
  char tmp[64];
  const char *p = strstr(body, "\"Result\":");
  CHECK(p != NULL && (size_t)(p - body) < len);
  snprintf(tmp, sizeof tmp, "%.20s", p + 9);
  return (int32_t)strtol(tmp, NULL, 10);
}

/* ------------------------------------------------------------------------ */
/* The bridge: the host's calls are made so that their IDs are the
 * recording's (2, 3, ... in order), and the guest's bytes are replayed up to
 * offset k, then the guest half-closes (it keeps reading, so the host's
 * writes never fail and the loss is the read side's EOF). */

typedef struct session_s {
  ftrans_t in;   /* gcs-to-host */
  ftrans_t out;  /* host-to-gcs: the request types */
  size_t ncalls; /* requests after NegotiateProtocol */
  fcall_t calls[64];
  int full_status[64];
  uint32_t full_hresult[64];
  size_t resp_end[64]; /* where the answer to call i ends in `in` */
  size_t notify_end[8];
  size_t nnotify;
} session_t;

static void session_load(session_t *s, const char *name) {
  char path[128];
  memset(s, 0, sizeof *s);
  snprintf(path, sizeof path, "%s.gcs-to-host", name);
  ftrans_load(&s->in, path);
  snprintf(path, sizeof path, "%s.host-to-gcs", name);
  ftrans_load(&s->out, path);
  CHECK_EQ(s->out.f[0].type, HCSB_MSG_NEGOTIATE_PROTOCOL);
  /* The bridge numbers calls 1, 2, ...: the recording must too. */
  for (size_t i = 0; i < s->out.n; i++) CHECK_U64(s->out.f[i].id, i + 1);
  s->ncalls = s->out.n - 1;
  for (size_t i = 0; i < s->ncalls; i++) {
    int found = 0;
    for (size_t j = 0; j < s->in.n; j++) {
      if (s->in.f[j].id != i + 2 || s->in.f[j].type >> 28 != 2) continue;
      CHECK(!found);
      found = 1;
      s->resp_end[i] = s->in.f[j].end;
      int32_t r = recorded_result(s->in.f[j].body, s->in.f[j].body_len);
      s->full_hresult[i] = (uint32_t)r;
      s->full_status[i] = r == 0 ? 0 : HCSB_EGUEST;
    }
    CHECK(found);
  }
  for (size_t j = 0; j < s->in.n; j++)
    if (s->in.f[j].type == HCSB_MSG_NOTIFY_CONTAINER)
      s->notify_end[s->nnotify++] = s->in.f[j].end;
}

static void session_free(session_t *s) {
  ftrans_free(&s->in);
  ftrans_free(&s->out);
}

static void run_cut(session_t *s, size_t k) {
  fbr_t f;
  int guest = fbr_init(&f, s);

  /* The guest's side is written up front (the socket buffer holds it all);
   * the answers simply arrive as fast as a guest could send them. */
  if (k > 0) CHECK_EQ(write(guest, s->in.data, k), (ssize_t)k);
  CHECK_EQ(shutdown(guest, SHUT_WR), 0);
  /* Made before negotiation: they wait, then go out as IDs 2, 3, ... */
  for (size_t i = 0; i < s->ncalls; i++) {
    hcsb_request_t q = faults_req(s->out.f[i + 1].type);
    memset(&s->calls[i], 0, sizeof s->calls[i]);
    CHECK_EQ(fcall(f.b, &q, 0, &s->calls[i], NULL), 0);
  }
  fbr_start(&f);

  int negotiated = k >= s->in.f[0].end;
  RUN_UNTIL(&f.loop, f.ready_n == 1 && (!negotiated || f.disc_n == 1));
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_EQ(st.pending, 0);
  CHECK_U64(st.calls_completed, s->ncalls);
  CHECK_EQ(f.ready_status, negotiated ? 0 : -ECONNRESET);
  CHECK_EQ(f.disc_n, negotiated);
  if (negotiated) CHECK_EQ(f.disc_status, -ECONNRESET);
  CHECK_EQ(hcsb_bridge_close_cause(f.b), UV_EOF);
  for (size_t i = 0; i < s->ncalls; i++) {
    fcall_t *c = &s->calls[i];
    int answered = k >= s->resp_end[i];
    if (c->n != 1 ||
        c->status != (answered ? s->full_status[i] : -ECONNRESET) ||
        (answered && c->hresult != s->full_hresult[i]) ||
        (answered && c->id != i + 2))
      hcsb_test_fail(__FILE__, __LINE__,
                     "offset %zu: call %zu (ID %zu): %d callbacks, status %d "
                     "hresult 0x%08X, expected %d",
                     k, i, i + 2, c->n, c->status, (unsigned)c->hresult,
                     answered ? s->full_status[i] : -ECONNRESET);
  }
  int notes = 0;
  for (size_t i = 0; i < s->nnotify; i++) notes += k >= s->notify_end[i];
  CHECK_EQ(f.notify_n, notes);
  fbr_finish(&f);
  /* Nothing more after the close. */
  for (size_t i = 0; i < s->ncalls; i++) CHECK_EQ(s->calls[i].n, 1);
  CHECK_EQ(f.ready_n, 1);
  CHECK_EQ(f.disc_n, negotiated);
}

static void check_session_cuts(const char *name) {
  session_t *s = malloc(sizeof *s);
  size_t runs = 0;
  CHECK(s != NULL);
  session_load(s, name);
  /* k == len is the whole session, then EOF between frames. */
  for (size_t k = 0; k <= s->in.len; k++) {
    if (!offset_wanted(&s->in, k) && k != s->in.len) continue;
    run_cut(s, k);
    runs++;
  }
  fprintf(stderr, "  %s: %zu offsets of %zu, %zu calls each\n", name, runs,
          s->in.len + 1, s->ncalls);
  session_free(s);
  free(s);
}

static void test_eof_every_offset_13_container(void) {
  check_session_cuts("13_container");
}

static void test_eof_every_offset_03_exec_wait(void) {
  check_session_cuts("03_exec_wait");
}

static void test_eof_every_offset_06_properties_stacks(void) {
  check_session_cuts("06_getproperties_dumpstacks");
}

/* ------------------------------------------------------------------------ */
/* The Container/Process API over the same recording.  The API sends each
 * request after the previous answer, so the guest is reactive: before it
 * sends (any byte of) an answer it reads the request the answer is for,
 * and answers with the host's ID.  The host's sequence:
 *   1 NegotiateProtocol            <- recorded ID 1
 *   2 ModifySettings (layers)      <- 2    } hcsb_conn_create_container
 *   3 Create                       <- 3    }
 *   4 ExecuteProcess (init)        <- 5      hcsb_container_create_process
 *   5 WaitForProcess (the library's own, sent with no user call)
 *   6 GetProperties (ProcessList)  <- 7      hcsb_container_process_list
 *   7 GetProperties (LCOWMetrics)  <- 8      hcsb_container_statistics
 *   8 ShutdownGraceful             <- 18     hcsb_container_shutdown
 *     WaitForProcess answer        <- 6  (exit code 143)
 *     the exit notification        <- 0  (GracefulExit)
 * then the guest half-closes. */

static const struct {
  uint64_t rec_id; /* in 13_container.gcs-to-host */
  uint32_t rec_type;
  uint64_t host_id; /* 0: a notification */
} api_plan[] = {
    {1, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, 1},
    {2, HCSB_MSG_MODIFY_SETTINGS_RESPONSE, 2},
    {3, HCSB_MSG_CREATE_RESPONSE, 3},
    {5, HCSB_MSG_EXECUTE_PROCESS_RESPONSE, 4},
    {7, HCSB_MSG_GET_PROPERTIES_RESPONSE, 6},
    {8, HCSB_MSG_GET_PROPERTIES_RESPONSE, 7},
    {18, HCSB_MSG_SHUTDOWN_GRACEFUL_RESPONSE, 8},
    {6, HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE, 5},
    {0, HCSB_MSG_NOTIFY_CONTAINER, 0},
};
#define API_FRAMES (sizeof api_plan / sizeof api_plan[0])

static const uint32_t api_requests[] = {0,
                                        HCSB_MSG_NEGOTIATE_PROTOCOL,
                                        HCSB_MSG_MODIFY_SETTINGS,
                                        HCSB_MSG_CREATE,
                                        HCSB_MSG_EXECUTE_PROCESS,
                                        HCSB_MSG_WAIT_FOR_PROCESS,
                                        HCSB_MSG_GET_PROPERTIES,
                                        HCSB_MSG_GET_PROPERTIES,
                                        HCSB_MSG_SHUTDOWN_GRACEFUL};

typedef struct replay_s {
  uint8_t *frame[API_FRAMES]; /* with the host's IDs */
  size_t len[API_FRAMES];
  size_t end[API_FRAMES]; /* cumulative */
  size_t total;
  size_t k;
} replay_t;

static void replay_build(replay_t *r, const ftrans_t *in) {
  size_t at = 0;
  memset(r, 0, sizeof *r);
  for (size_t i = 0; i < API_FRAMES; i++) {
    size_t j;
    for (j = 0; j < in->n; j++)
      if (in->f[j].id == api_plan[i].rec_id &&
          in->f[j].type == api_plan[i].rec_type)
        break;
    CHECK(j < in->n);
    r->len[i] =
        faults_frame_append(&r->frame[i], 0, in->f[j].type, api_plan[i].host_id,
                            in->f[j].body, in->f[j].body_len);
    at += r->len[i];
    r->end[i] = at;
  }
  r->total = at;
}

static void replay_free(replay_t *r) {
  for (size_t i = 0; i < API_FRAMES; i++) free(r->frame[i]);
}

static void replay_script(fpeer_t *p) {
  replay_t *r = p->arg;
  uint64_t seen = 0;
  size_t sent = 0;

  for (size_t i = 0; i < API_FRAMES && sent < r->k; i++) {
    uint64_t want = api_plan[i].host_id;
    while (seen < want) {
      fframe_t f;
      if (fpeer_read(p, &f) != 0)
        hcsb_test_fail(__FILE__, __LINE__,
                       "guest: EOF waiting for request %llu",
                       (unsigned long long)want);
      CHECK_U64(f.id, seen + 1);
      CHECK_EQ(f.type, api_requests[f.id]);
      seen = f.id;
      fframe_free(&f);
    }
    size_t n = r->len[i] < r->k - sent ? r->len[i] : r->k - sent;
    fpeer_write(p, r->frame[i], n);
    sent += n;
  }
  fpeer_shutdown(p);
  while (1) { /* anything else the host sends until it closes */
    fframe_t f;
    if (fpeer_read(p, &f) != 0) break;
    CHECK(f.id > seen && f.id < sizeof api_requests / sizeof api_requests[0]);
    seen = f.id;
    fframe_free(&f);
  }
}

typedef struct drive_s {
  fconn_t f;
  hcsb_container_t *c;
  int c_n, c_status;
  int cw_n, cw_status;
  hcsb_container_exit_t cw_exit;
  char cw_type[32];
  int c_closed;
  hcsb_process_t *p;
  int p_n, p_status;
  int pw_n, pw_status;
  uint32_t pw_code;
  int p_closed;
  int pl_n, pl_status;
  size_t pl_count;
  uint32_t pl_pid[2];
  int st_n, st_status;
  uint64_t st_pids;
  fdone_t sh;
} drive_t;

static void d_shutdown(drive_t *d) {
  faults_in_api = 1;
  CHECK_EQ(hcsb_container_shutdown(d->c, NULL, fdone_cb, &d->sh), 0);
  faults_in_api = 0;
}

static void d_stats_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                       const hcsb_properties_t *props) {
  drive_t *d = data;
  (void)gerr;
  CHECK(!faults_in_api);
  d->st_n++;
  d->st_status = status;
  if (status != 0) return;
  CHECK(props->has_statistics);
  CHECK(props->statistics.has_pids);
  d->st_pids = props->statistics.pids_current;
  d_shutdown(d);
}

static void d_list_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      const hcsb_properties_t *props) {
  drive_t *d = data;
  (void)gerr;
  CHECK(!faults_in_api);
  d->pl_n++;
  d->pl_status = status;
  if (status != 0) return;
  CHECK(props->has_process_list);
  d->pl_count = props->nprocesses;
  for (size_t i = 0; i < props->nprocesses && i < 2; i++)
    d->pl_pid[i] = props->processes[i].process_id;
  faults_in_api = 1;
  CHECK_EQ(hcsb_container_statistics(d->c, NULL, d_stats_cb, d), 0);
  faults_in_api = 0;
}

static void d_proc_cb(void *data, hcsb_process_t *p, int status,
                      const hcsb_guest_error_t *gerr) {
  drive_t *d = data;
  (void)gerr;
  CHECK(!faults_in_api);
  CHECK(p == d->p);
  d->p_n++;
  d->p_status = status;
  if (status != 0) return;
  faults_in_api = 1;
  CHECK_EQ(hcsb_container_process_list(d->c, NULL, d_list_cb, d), 0);
  faults_in_api = 0;
}

static void d_proc_wait_cb(void *data, hcsb_process_t *p, int status,
                           uint32_t code) {
  drive_t *d = data;
  (void)p;
  CHECK(!faults_in_api);
  d->pw_n++;
  d->pw_status = status;
  d->pw_code = code;
}

static void d_ctr_cb(void *data, hcsb_container_t *c, int status,
                     const hcsb_guest_error_t *gerr) {
  drive_t *d = data;
  hcsb_process_config_t pc;
  (void)gerr;
  CHECK(!faults_in_api);
  CHECK(c == d->c);
  d->c_n++;
  d->c_status = status;
  if (status != 0) return;
  memset(&pc, 0, sizeof pc); /* no command: the spec's init process */
  faults_in_api = 1;
  CHECK_EQ(hcsb_container_create_process(d->c, NULL, &pc, d_proc_cb, d, &d->p),
           0);
  CHECK_EQ(hcsb_process_wait(d->p, 0, d_proc_wait_cb, d), 0);
  faults_in_api = 0;
}

static void d_ctr_wait_cb(void *data, hcsb_container_t *c, int status,
                          const hcsb_container_exit_t *exit) {
  drive_t *d = data;
  (void)c;
  CHECK(!faults_in_api);
  d->cw_n++;
  d->cw_status = status;
  CHECK(exit != NULL);
  d->cw_exit = *exit;
  snprintf(d->cw_type, sizeof d->cw_type, "%s",
           exit->type_name != NULL ? exit->type_name : "");
}

static void d_opened(fconn_t *f, int status) {
  drive_t *d = (drive_t *)f; /* f is the first member */
  static const char *const layers[] = {"/opt/gcs-peer/rootfs-busybox"};
  hcsb_container_config_t cfg;
  if (status != 0) return;
  memset(&cfg, 0, sizeof cfg);
  cfg.id = "gcspeer-c1";
  cfg.oci_spec_json =
      "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":false,"
      "\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"/bin/sh\"],\"cwd\":\"/\"},"
      "\"root\":{\"path\":\"/\"}}";
  cfg.layers = layers;
  cfg.nlayers = 1;
  cfg.layer_scratch_path = "/run/gcs/c/gcspeer-c1/scratch";
  faults_in_api = 1;
  CHECK_EQ(hcsb_conn_create_container(f->conn, NULL, &cfg, d_ctr_cb, d, &d->c),
           0);
  CHECK_EQ(hcsb_container_wait(d->c, 0, d_ctr_wait_cb, d), 0);
  faults_in_api = 0;
}

/* Everything the run can still report has been reported. */
static int api_settled(const drive_t *d, size_t m) {
  if (d->f.open_n == 0) return 0;
  if (m == 0) return 1;
  if (d->f.lost_n == 0 || d->c_n == 0 || d->cw_n == 0) return 0;
  if (m >= 3 && (d->p_n == 0 || d->pw_n == 0)) return 0;
  if (m >= 4 && d->pl_n == 0) return 0;
  if (m >= 5 && d->st_n == 0) return 0;
  if (m >= 6 && d->sh.n == 0) return 0;
  return 1;
}

#define EXPECT(cond)                                                          \
  do {                                                                        \
    if (!(cond))                                                              \
      hcsb_test_fail(__FILE__, __LINE__, "offset %zu (%zu frames): %s", k, m, \
                     #cond);                                                  \
  } while (0)

static void run_api_cut(replay_t *r, size_t k) {
  drive_t d;
  size_t m = 0;
  uint32_t code = 0;

  while (m < API_FRAMES && r->end[m] <= k) m++;
  r->k = k;
  memset(&d, 0, sizeof d);
  fconn_open(&d.f, replay_script, r, NULL, d_opened);
  RUN_UNTIL(&d.f.loop, api_settled(&d, m));

  EXPECT(d.f.open_n == 1 && d.f.open_status == (m >= 1 ? 0 : -ECONNRESET));
  EXPECT(d.f.lost_n == (m >= 1) && (m == 0 || d.f.lost_status == -ECONNRESET));
  if (m >= 1) {
    EXPECT(d.c_n == 1 && d.c_status == (m >= 3 ? 0 : -ECONNRESET));
    EXPECT(d.cw_n == 1);
    if (m >= 9) {
      EXPECT(d.cw_status == 0 && d.cw_exit.end == HCSB_CONTAINER_EXITED);
      EXPECT(d.cw_exit.type == HCSB_NOTIFY_GRACEFUL_EXIT &&
             d.cw_exit.result == 0);
      EXPECT(strcmp(d.cw_type, "GracefulExit") == 0);
    } else {
      EXPECT(d.cw_status == -ECONNRESET &&
             d.cw_exit.end == HCSB_CONTAINER_CONNECTION_LOST);
    }
  }
  if (m >= 3) {
    EXPECT(d.p_n == 1 && d.p_status == (m >= 4 ? 0 : -ECONNRESET));
    EXPECT(d.pw_n == 1);
    if (m >= 8) {
      EXPECT(d.pw_status == 0 && d.pw_code == 143);
      EXPECT(hcsb_process_exit_code(d.p, &code) == 0 && code == 143);
      EXPECT(hcsb_process_pid(d.p) == 44);
    } else {
      EXPECT(d.pw_status == -ECONNRESET);
      EXPECT(hcsb_process_exit_code(d.p, &code) == -ENODATA);
    }
  } else {
    EXPECT(d.p == NULL);
  }
  if (m >= 4) {
    EXPECT(d.pl_n == 1 && d.pl_status == (m >= 5 ? 0 : -ECONNRESET));
    if (m >= 5)
      EXPECT(d.pl_count == 2 && d.pl_pid[0] == 44 && d.pl_pid[1] == 57);
  } else {
    EXPECT(d.pl_n == 0);
  }
  if (m >= 5) {
    EXPECT(d.st_n == 1 && d.st_status == (m >= 6 ? 0 : -ECONNRESET));
    if (m >= 6) EXPECT(d.st_pids == 2);
  } else {
    EXPECT(d.st_n == 0);
  }
  EXPECT(d.sh.n == (m >= 6));
  if (m >= 6) EXPECT(d.sh.status == (m >= 7 ? 0 : -ECONNRESET));

  /* A wait after the end reports the same outcome, on a later turn. */
  if (d.c != NULL) {
    int before = d.cw_n;
    faults_in_api = 1;
    CHECK_EQ(hcsb_container_wait(d.c, 0, d_ctr_wait_cb, &d), 0);
    faults_in_api = 0;
    EXPECT(d.cw_n == before);
    RUN_UNTIL(&d.f.loop, d.cw_n == before + 1);
    EXPECT(d.cw_exit.end ==
           (m >= 9 ? HCSB_CONTAINER_EXITED : HCSB_CONTAINER_CONNECTION_LOST));
  }
  faults_in_api = 1;
  if (d.p != NULL) hcsb_process_close(d.p, fclosed_cb, &d.p_closed);
  if (d.c != NULL) hcsb_container_close(d.c, fclosed_cb, &d.c_closed);
  faults_in_api = 0;
  fconn_finish(&d.f);
  EXPECT(d.p_closed == (d.p != NULL) && d.c_closed == (d.c != NULL));
  /* Nothing fired twice, even through the closes. */
  EXPECT(d.c_n <= 1 && d.p_n <= 1 && d.pw_n <= 1 && d.pl_n <= 1 && d.st_n <= 1);
  EXPECT(d.sh.n <= 1 && d.f.lost_n <= 1 && d.f.open_n == 1);
}

static void test_eof_every_offset_api_container(void) {
  ftrans_t in;
  replay_t r;
  size_t runs = 0;
  ftrans_load(&in, "13_container.gcs-to-host");
  replay_build(&r, &in);
  size_t stride = faults_pick(1, 23);
  for (size_t k = 0; k <= r.total; k++) {
    int edge = 0;
    for (size_t i = 0; i < API_FRAMES; i++)
      if (k + 1 >= r.end[i] && k <= r.end[i] + 16) edge = 1;
    if (k % stride != 0 && !edge && k != r.total) continue;
    run_api_cut(&r, k);
    runs++;
  }
  fprintf(stderr, "  %zu offsets of %zu\n", runs, r.total + 1);
  replay_free(&r);
  ftrans_free(&in);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(eof_every_offset_13_container, 60),
    TEST_ENTRY_T(eof_every_offset_03_exec_wait, 60),
    TEST_ENTRY_T(eof_every_offset_06_properties_stacks, 60),
    TEST_ENTRY_T(eof_every_offset_api_container, 60),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
