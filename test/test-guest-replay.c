/* Cross-check against the sessions recorded with hcsshim v0.11.8's GCS:
 * the exact request frames of raw/<name>.host-to-gcs.bin are replayed to
 * hcsb-guest and every answer must match the recorded one (parsed from the
 * GCS->HOST blocks of <name>.txt) in type, ID and Result.
 *
 * Requests whose recorded answer depends on things the emulator cannot
 * reproduce are skipped; each skip list says why.  The usual reason is a
 * PID: WaitForProcess/SignalProcess/ResizeConsole name the PIDs the recorded
 * guest assigned, which are not ours.  A helper process plays the host's
 * stdio listeners for the replayed ExecuteProcess requests that succeeded
 * in the recording: stdin gets EOF at once, stdout/stderr are drained. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"
#include "test-guest-client.h"

#define MAX_FRAMES 128

typedef struct req_s {
  uint32_t type;
  uint64_t id;
  const uint8_t *body;
  size_t len;
} req_t;

typedef struct exp_s {
  uint32_t type;
  uint64_t id;
  uint32_t hr;
  int matched;
} exp_t;

typedef struct session_s {
  uint8_t *raw;
  req_t reqs[MAX_FRAMES];
  size_t nreqs;
  exp_t exps[MAX_FRAMES];
  size_t nexps;
} session_t;

static void load(session_t *s, const char *name) {
  char path[256], *txt, *line, *save = NULL;
  size_t len, off = 0;
  exp_t *cur = NULL;

  memset(s, 0, sizeof *s);
  snprintf(path, sizeof path, "transcripts/raw/%s.host-to-gcs.bin", name);
  s->raw = hcsb_test_read_file(hcsb_test_data_path(path), &len);
  while (off + HCSB__HDR_SIZE <= len) {
    hcsb__hdr_t h;
    hcsb__hdr_decode(s->raw + off, &h);
    CHECK(h.size >= HCSB__HDR_SIZE && off + h.size <= len);
    CHECK(s->nreqs < MAX_FRAMES);
    s->reqs[s->nreqs].type = h.type;
    s->reqs[s->nreqs].id = h.id;
    s->reqs[s->nreqs].body = s->raw + off + HCSB__HDR_SIZE;
    s->reqs[s->nreqs].len = h.size - HCSB__HDR_SIZE;
    s->nreqs++;
    off += h.size;
  }
  CHECK_EQ(off, len);

  /* "=== [ 0.085s] GCS->HOST  Type=0x20100B01 ...  SequenceID=0x...01 (1)"
   * followed by "    Result HRESULT = 0x00000000". */
  snprintf(path, sizeof path, "transcripts/%s.txt", name);
  txt = (char *)hcsb_test_read_file(hcsb_test_data_path(path), &len);
  for (line = strtok_r(txt, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    unsigned int type, hr;
    unsigned long long id;
    const char *t, *q;

    if (strncmp(line, "===", 3) == 0 || strncmp(line, "---", 3) == 0 ||
        strncmp(line, "~~~", 3) == 0)
      cur = NULL;
    if (strncmp(line, "===", 3) == 0 && strstr(line, "GCS->HOST") != NULL) {
      t = strstr(line, "Type=0x");
      q = strstr(line, "SequenceID=0x");
      CHECK(t != NULL && q != NULL);
      CHECK(sscanf(t, "Type=0x%x", &type) == 1);
      CHECK(sscanf(q, "SequenceID=0x%llx", &id) == 1);
      CHECK(s->nexps < MAX_FRAMES);
      cur = &s->exps[s->nexps++];
      cur->type = type;
      cur->id = id;
      cur->hr = 0xFFFFFFFFu; /* notifications carry no "Result HRESULT" */
    } else if (cur != NULL &&
               sscanf(line, "    Result HRESULT = 0x%x", &hr) == 1) {
      cur->hr = hr;
    }
  }
  free(txt);
}

static int skipped(uint64_t id, const uint64_t *skip, size_t nskip) {
  size_t i;
  for (i = 0; i < nskip; i++)
    if (skip[i] == id) return 1;
  return 0;
}

static const exp_t *recorded(const session_t *s, uint64_t id) {
  size_t i;
  for (i = 0; i < s->nexps; i++)
    if (s->exps[i].id == id && s->exps[i].type != 0x30100101u)
      return &s->exps[i];
  return NULL;
}

/* The host side of the stdio relays the replayed execs ask for. */
static pid_t stdio_service(gc_t *c, const session_t *s, const uint64_t *skip,
                           size_t nskip) {
  struct pollfd fds[64];
  int kind[64], nl = 0, n, i; /* -2 stdin listener, -1 output listener */
  size_t k;
  pid_t pid;

  for (k = 0; k < s->nreqs; k++) {
    const req_t *r = &s->reqs[k];
    const exp_t *e = recorded(s, r->id);
    json_object *root = NULL, *relay;
    static const char *const keys[3] = {"StdIn", "StdOut", "StdErr"};

    if (r->type != 0x10100501u || skipped(r->id, skip, nskip) || e == NULL ||
        e->hr != 0)
      continue; /* a failed exec had no listener in the recording either */
    if (hcsb__json_parse((const char *)r->body, r->len, &root) != 0) continue;
    relay = hcsb__json_get(hcsb__json_get(root, "Settings"),
                           "VsockStdioRelaySettings");
    for (i = 0; i < 3; i++) {
      json_object *v = hcsb__json_get(relay, keys[i]);
      if (v == NULL) continue;
      CHECK(nl < 64);
      fds[nl].fd = gc_listen(c, (uint32_t)json_object_get_int64(v));
      fds[nl].events = POLLIN;
      kind[nl++] = i == 0 ? -2 : -1;
    }
    json_object_put(root);
  }

  fflush(NULL);
  pid = fork();
  CHECK(pid >= 0);
  if (pid > 0) {
    for (i = 0; i < nl; i++) close(fds[i].fd);
    return pid;
  }
  close(c->fd); /* the emulator must see EOF when the test closes it */
  n = nl;
  for (;;) {
    if (poll(fds, (nfds_t)n, -1) <= 0) continue;
    for (i = 0; i < n; i++) {
      char buf[4096];
      if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
      if (kind[i] < 0) {
        int fd = accept(fds[i].fd, NULL, NULL);
        if (fd < 0 || n == 64) continue;
        if (kind[i] == -2) shutdown(fd, SHUT_WR); /* EOF on stdin */
        fds[n].fd = fd;
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        kind[n++] = 1; /* a connection: read until EOF */
      } else if (read(fds[i].fd, buf, sizeof buf) <= 0) {
        close(fds[i].fd); /* drained: closing ends the guest's handshake */
        fds[i].fd = -1;
      }
    }
  }
}

static void replay(const char *name, const uint64_t *skip, size_t nskip) {
  session_t s;
  gc_t c;
  size_t i, sent = 0, got = 0;
  pid_t service;
  int st;

  load(&s, name);
  CHECK(s.nreqs > 0 && s.nexps > 0);
  gc_start(&c, NULL, 0);
  service = stdio_service(&c, &s, skip, nskip);

  for (i = 0; i < s.nreqs; i++) {
    if (skipped(s.reqs[i].id, skip, nskip)) continue;
    gc_send_raw(&c, s.reqs[i].type, s.reqs[i].id, s.reqs[i].body,
                s.reqs[i].len);
    sent++;
  }
  while (got < sent) {
    gc_frame_t f;
    exp_t *e = NULL;
    uint32_t hr;

    if (gc_recv(&c, &f, 10000) != 0)
      hcsb_test_fail(__FILE__, __LINE__, "%s: %zu of %zu answers", name, got,
                     sent);
    /* Every notification in these recordings followed a skipped wait on
     * init, so none may come (it is sent only after such a wait). */
    if (f.type == 0x30100101u)
      hcsb_test_fail(__FILE__, __LINE__, "%s: unexpected notification %s", name,
                     f.body);
    for (i = 0; i < s.nexps && e == NULL; i++)
      if (s.exps[i].id == f.id && !s.exps[i].matched &&
          s.exps[i].type != 0x30100101u)
        e = &s.exps[i];
    if (e == NULL)
      hcsb_test_fail(__FILE__, __LINE__,
                     "%s: answer to id %" PRIu64 " not in the recording: %s",
                     name, f.id, f.body);
    hr = f.json != NULL ? gc_result(&f) : 0xFFFFFFFFu;
    if (f.type != e->type || hr != e->hr)
      hcsb_test_fail(__FILE__, __LINE__,
                     "%s id %" PRIu64 ": got type 0x%08" PRIx32
                     " Result 0x%08" PRIx32 ", recorded type 0x%08" PRIx32
                     " Result 0x%08" PRIx32 ": %.300s",
                     name, f.id, f.type, hr, e->type, e->hr, f.body);
    e->matched = 1;
    got++;
    gc_frame_free(&f);
  }
  CHECK(gc_quiet(&c, 100));
  st = gc_stop(&c);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  kill(service, SIGKILL);
  waitpid(service, NULL, 0);
  free(s.raw);
}

static void test_replay_01_negotiate(void) {
  replay("01_negotiate", NULL, 0);
}

static void test_replay_03_exec_wait(void) {
  /* Waits on the recorded PIDs 12, 14, 16, 17 and 18. */
  static const uint64_t skip[] = {3, 4, 6, 8, 9, 11, 13};
  replay("03_exec_wait", skip, sizeof skip / sizeof skip[0]);
}

static void test_replay_06_getproperties_dumpstacks(void) {
  replay("06_getproperties_dumpstacks", NULL, 0);
}

static void test_replay_07_bad_inputs(void) {
  replay("07_bad_inputs", NULL, 0);
}

static void test_replay_10_pipelining(void) {
  /* Waits on the recorded PIDs 11 and 14 (3, 4 and 10..29); the wait on
   * 424242 is kept: nobody has that PID in either guest's table. */
  static const uint64_t skip[] = {3,  4,  10, 11, 12, 13, 14, 15, 16, 17, 18,
                                  19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29};
  replay("10_pipelining", skip, sizeof skip / sizeof skip[0]);
}

static void test_replay_13_container(void) {
  /* 6, 11, 13 wait and 10, 14, 16, 17 resize/signal the recorded PIDs 44,
   * 72 and 91.  21..23 (delete, properties after delete, delete again) rely
   * on the container having exited, which the recording ensured through
   * the skipped wait on init (6): replayed, they would race its exit. */
  static const uint64_t skip[] = {6, 10, 11, 13, 14, 16, 17, 21, 22, 23};
  replay("13_container", skip, sizeof skip / sizeof skip[0]);
}

static void test_replay_14_notification_needs_wait(void) {
  /* 5 waits on the recorded PID 44; 7 (delete) relies on init having
   * exited, which that wait ensured. */
  static const uint64_t skip[] = {5, 7};
  replay("14_notification_needs_wait", skip, sizeof skip / sizeof skip[0]);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(replay_01_negotiate),
    TEST_ENTRY(replay_03_exec_wait),
    TEST_ENTRY(replay_06_getproperties_dumpstacks),
    TEST_ENTRY(replay_07_bad_inputs),
    TEST_ENTRY(replay_10_pipelining),
    TEST_ENTRY(replay_13_container),
    TEST_ENTRY(replay_14_notification_needs_wait),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
