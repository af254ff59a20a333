/* hcsb-guest, driven over a socketpair by a small synchronous client:
 * exact response types, IDs, HRESULTs, exit codes and stdio bytes for every
 * behaviour the emulator promises.  The replay of the sessions recorded
 * with a real GCS is in test-guest-replay.c. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "guest/guest.h"
#include "runner.h"
#include "test-guest-client.h"

#define T_CREATE 0x10100101u
#define T_START 0x10100201u
#define T_SHUTDOWN_GRACEFUL 0x10100301u
#define T_SHUTDOWN_FORCED 0x10100401u
#define T_EXECUTE 0x10100501u
#define T_WAIT 0x10100601u
#define T_SIGNAL 0x10100701u
#define T_RESIZE 0x10100801u
#define T_GET_PROPERTIES 0x10100901u
#define T_MODIFY 0x10100a01u
#define T_NEGOTIATE 0x10100b01u
#define T_DUMP_STACKS 0x10100c01u
#define T_DELETE 0x10100d01u
#define RESP(t) (0x20000000u | ((t)&0x0FFFFFFFu))

#define E_NOTIMPL 0x80004001u
#define E_FAIL 0x80004005u
#define E_INVALIDARG 0x80070057u
#define E_NOT_FOUND 0x80070490u
#define E_TIMEOUT 0xC0370109u
#define E_VERSION 0xC037010Cu
#define E_JSON 0xC037010Du
#define E_NO_SYSTEM 0xC037010Eu
#define E_EXISTS 0xC037010Fu
#define E_INVALID_STATE 0x80370105u

#define AID "6f1c2a9e-0000-4000-8000-00000000a1d0"
#define INFINITE "4294967295"

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* Request builders */

/* ExecuteProcess with a ProcessParameters JSON text; ports 0 = omitted. */
static void send_exec(gc_t *c, uint64_t id, const char *cid, const char *params,
                      uint32_t in, uint32_t out, uint32_t err) {
  char relay[128] = "";
  int n = 0;

  if (in) n += snprintf(relay + n, sizeof relay - n, "\"StdIn\":%u", in);
  if (out)
    n += snprintf(relay + n, sizeof relay - n, "%s\"StdOut\":%u", n ? "," : "",
                  out);
  if (err)
    n += snprintf(relay + n, sizeof relay - n, "%s\"StdErr\":%u", n ? "," : "",
                  err);
  gc_sendf(c, T_EXECUTE, id,
           "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID
           "\",\"Settings\":"
           "{\"ProcessParameters\":%s,\"VsockStdioRelaySettings\":{%s}}}",
           cid, gc_quote(params), relay);
}

/* ProcessParameters for a UVM `/bin/sh -c script`. */
static const char *sh_params(const char *script, const char *more) {
  static char buf[2][4096];
  static int next;
  char *b = buf[next++ & 1];

  snprintf(b, sizeof buf[0],
           "{\"CommandArgs\":[\"/bin/"
           "sh\",\"-c\",%s],\"CreateInUtilityVM\":true%s%s}",
           gc_quote(script), more[0] ? "," : "", more);
  return b;
}

static uint32_t exec_ok(gc_t *c, uint64_t id, const char *cid,
                        const char *params, uint32_t in, uint32_t out,
                        uint32_t err) {
  gc_frame_t f;
  uint32_t pid;

  send_exec(c, id, cid, params, in, out, err);
  gc_expect(c, id, RESP(T_EXECUTE), 0, &f);
  pid = (uint32_t)gc_u64(&f, "ProcessId");
  CHECK(pid > 1);
  gc_frame_free(&f);
  return pid;
}

static void send_wait(gc_t *c, uint64_t id, const char *cid, uint32_t pid,
                      const char *timeout) {
  gc_sendf(c, T_WAIT, id,
           "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID
           "\","
           "\"ProcessId\":%u,\"TimeoutInMs\":%s}",
           cid, pid, timeout);
}

static uint32_t wait_exit(gc_t *c, uint64_t id, const char *cid, uint32_t pid) {
  gc_frame_t f;
  uint32_t code;

  send_wait(c, id, cid, pid, INFINITE);
  gc_expect(c, id, RESP(T_WAIT), 0, &f);
  code = (uint32_t)gc_u64(&f, "ExitCode");
  gc_frame_free(&f);
  return code;
}

static void send_signal(gc_t *c, uint64_t id, const char *cid, uint32_t pid,
                        int sig) {
  if (sig < 0)
    gc_sendf(c, T_SIGNAL, id,
             "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID
             "\","
             "\"ProcessId\":%u}",
             cid, pid);
  else
    gc_sendf(c, T_SIGNAL, id,
             "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID
             "\","
             "\"ProcessId\":%u,\"Options\":{\"Signal\":%d}}",
             cid, pid, sig);
}

static void send_resize(gc_t *c, uint64_t id, const char *cid, uint32_t pid,
                        int h, int w) {
  gc_sendf(c, T_RESIZE, id,
           "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID
           "\","
           "\"ProcessId\":%u,\"Height\":%d,\"Width\":%d}",
           cid, pid, h, w);
}

static void send_base(gc_t *c, uint32_t type, uint64_t id, const char *cid) {
  gc_sendf(c, type, id, "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID "\"}",
           cid);
}

static void send_props(gc_t *c, uint64_t id, const char *cid,
                       const char *types) {
  char q[256];
  snprintf(q, sizeof q, "{\"PropertyTypes\":[%s]}", types);
  gc_sendf(c, T_GET_PROPERTIES, id,
           "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID "\",\"Query\":%s}",
           cid, gc_quote(q));
}

static void send_modify(gc_t *c, uint64_t id, const char *cid,
                        const char *request) {
  gc_sendf(c, T_MODIFY, id,
           "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID "\",\"Request\":%s}",
           cid, request);
}

/* Create with an OCI spec whose process runs `script` (terminal off). */
static void send_create(gc_t *c, uint64_t id, const char *cid, const char *aid,
                        const char *script) {
  char spec[4096], config[8192];

  snprintf(spec, sizeof spec,
           "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":false,"
           "\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"/bin/sh\",\"-c\",%s],"
           "\"env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"],\"cwd\":\"/\"},"
           "\"root\":{\"path\":\"/run/gcs/c/%s/rootfs\"},\"hostname\":\"x\"}",
           gc_quote(script), cid);
  snprintf(config, sizeof config,
           "{\"SchemaVersion\":{\"Major\":2,\"Minor\":1},"
           "\"OciBundlePath\":\"/run/gcs/c/%s\",\"OciSpecification\":%s,"
           "\"ScratchDirPath\":\"/run/gcs/c/%s/scratch\"}",
           cid, spec, cid);
  gc_sendf(c, T_CREATE, id,
           "{\"ContainerId\":\"%s\",\"ActivityId\":\"%s\","
           "\"ContainerConfig\":%s}",
           cid, aid, gc_quote(config));
}

/* Exec in a container: OciProcess running `script`. */
static const char *oci_params(const char *script, int terminal,
                              const char *pipes) {
  static char buf[2][4096];
  static int next;
  char *b = buf[next++ & 1];

  snprintf(
      b, sizeof buf[0],
      "{%s%s\"OciProcess\":{\"terminal\":%s,\"args\":[\"/bin/sh\",\"-c\","
      "%s],\"env\":[\"PATH=/usr/bin:/bin\",\"TERM=xterm\"],\"cwd\":\"/\"}}",
      pipes, pipes[0] ? "," : "", terminal ? "true" : "false",
      gc_quote(script));
  return b;
}

/* The container's ProcessList, asked until it has `want` entries (a shell
 * forks its children a little after it starts) or 2 s passed. */
static size_t process_list(gc_t *c, uint64_t id, const char *cid, size_t want,
                           pid_t *pids, size_t max) {
  long long deadline = now_ms() + gc_scaled(2000);
  size_t n = 0, i;

  for (;; id++) {
    json_object *props = NULL, *list;
    gc_frame_t f;

    send_props(c, id, cid, "\"ProcessList\"");
    gc_expect(c, id, RESP(T_GET_PROPERTIES), 0, &f);
    CHECK_EQ(hcsb__json_parse(gc_str(&f, "Properties"),
                              strlen(gc_str(&f, "Properties")), &props),
             0);
    list = hcsb__json_get(props, "ProcessList");
    n = list != NULL ? json_object_array_length(list) : 0;
    for (i = 0; i < n && i < max; i++)
      pids[i] = (pid_t)json_object_get_int64(
          hcsb__json_get(json_object_array_get_idx(list, i), "ProcessId"));
    for (i = 1; i < n && i < max; i++) CHECK(pids[i - 1] < pids[i]);
    json_object_put(props);
    gc_frame_free(&f);
    if (n == want || now_ms() > deadline) return n;
    usleep(20000);
  }
}

/* Writes `text` into a cat's stdin relay `in` from a child (then closes
 * it) while reading the cat's stdout relay `out_fd` here; the bytes must
 * come back unchanged.  The caller reaps the child. */
static void cat_round_trip(int in, int out_fd, const char *text, char *out,
                           size_t outsz, int timeout_ms) {
  if (fork() == 0) {
    gc_write(in, text);
    shutdown(in, SHUT_WR);
    _exit(0);
  }
  close(in);
  CHECK_EQ(gc_read_all(out_fd, out, outsz, timeout_ms), strlen(text));
  CHECK(memcmp(out, text, strlen(text)) == 0);
}

static void check_contains(const char *hay, const char *needle) {
  if (hay == NULL || strstr(hay, needle) == NULL)
    hcsb_test_fail(__FILE__, __LINE__, "\"%s\" not in \"%s\"", needle,
                   hay ? hay : "(null)");
}

static void stop_ok(gc_t *c) {
  int st = gc_stop(c);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0);
}

/* ------------------------------------------------------------------------ */
/* Session rules */

static void test_negotiation_rules(void) {
  gc_t c;
  gc_frame_t f;

  gc_start(&c, NULL, 0);
  /* Anything before negotiation is "not supported", named by type. */
  send_base(&c, T_DUMP_STACKS, 1, GC_NULL_ID);
  gc_expect(&c, 1, RESP(T_DUMP_STACKS), E_NOTIMPL, &f);
  CHECK_STR(gc_str(&f, "ErrorMessage"),
            "HRESULT 0x80004001: bridge: function not supported, header type: "
            "ComputeSystemDumpStacksV1");
  CHECK_STR(gc_str(&f, "ActivityId"), AID);
  gc_frame_free(&f);

  gc_sendf(&c, T_NEGOTIATE, 2,
           "{\"ContainerId\":\"\",\"ActivityId\":\"" AID
           "\","
           "\"MinimumVersion\":1,\"MaximumVersion\":3}");
  gc_expect(&c, 2, RESP(T_NEGOTIATE), E_VERSION, &f);
  CHECK_STR(gc_str(&f, "ErrorMessage"), "HRESULT: 0xc037010c");
  gc_frame_free(&f);
  gc_sendf(&c, T_NEGOTIATE, 3,
           "{\"ContainerId\":\"\",\"ActivityId\":\"" AID
           "\","
           "\"MinimumVersion\":5,\"MaximumVersion\":9}");
  gc_expect(&c, 3, RESP(T_NEGOTIATE), E_VERSION, NULL);

  /* 3..7 overlaps 4: version 4 and exactly the v0.11.8 capabilities. */
  gc_sendf(&c, T_NEGOTIATE, 4,
           "{\"ContainerId\":\"\",\"ActivityId\":\"" AID
           "\","
           "\"MinimumVersion\":3,\"MaximumVersion\":7}");
  gc_expect(&c, 4, RESP(T_NEGOTIATE), 0, &f);
  CHECK_STR(f.body,
            "{\"Result\":0,\"ActivityId\":\"" AID
            "\",\"Version\":4,"
            "\"Capabilities\":{\"SupportedSchemaVersions\":[{\"Major\":2,"
            "\"Minor\":1}],\"RuntimeOsType\":\"Linux\","
            "\"GuestDefinedCapabilities\":{\"NamespaceAddRequestSupported\":"
            "true,\"SignalProcessSupported\":true,\"DumpStacksSupported\":true,"
            "\"DeleteContainerStateSupported\":true}}}");
  gc_frame_free(&f);

  gc_sendf(&c, T_NEGOTIATE, 5,
           "{\"ContainerId\":\"\",\"ActivityId\":\"" AID
           "\","
           "\"MinimumVersion\":4,\"MaximumVersion\":4}");
  gc_expect(&c, 5, RESP(T_NEGOTIATE), E_NOTIMPL, &f);
  check_contains(gc_str(&f, "ErrorMessage"),
                 "ComputeSystemNegotiateProtocolV1");
  gc_frame_free(&f);
  stop_ok(&c);
}

/* The recorded NegotiateProtocol exchange, byte for byte. */
static void test_negotiation_bytes_match_recording(void) {
  static uint8_t req[4096], want[4096];
  FILE *fp;
  size_t nreq, nwant;
  gc_t c;
  gc_frame_t f;
  char hdr[16];

  fp =
      fopen(hcsb_test_data_path("transcripts/raw/01_negotiate.host-to-gcs.bin"),
            "rb");
  CHECK(fp != NULL);
  nreq = fread(req, 1, sizeof req, fp);
  fclose(fp);
  fp =
      fopen(hcsb_test_data_path("transcripts/raw/01_negotiate.gcs-to-host.bin"),
            "rb");
  CHECK(fp != NULL);
  nwant = fread(want, 1, sizeof want, fp);
  fclose(fp);
  CHECK(nreq > 16 && nwant > 16);

  gc_start(&c, NULL, 0);
  gc_send_raw(&c, req[0] | req[1] << 8 | req[2] << 16 | (uint32_t)req[3] << 24,
              1, req + 16, nreq - 16);
  CHECK_EQ(gc_recv(&c, &f, 5000), 0);
  {
    hcsb__hdr_t h = {f.type, (uint32_t)(16 + f.len), f.id};
    hcsb__hdr_encode((uint8_t *)hdr, &h);
  }
  CHECK_EQ(16 + f.len, nwant);
  CHECK_MEM(hdr, want, 16);
  CHECK_MEM(f.body, want + 16, f.len);
  gc_frame_free(&f);
  stop_ok(&c);
}

static void test_unknown_types(void) {
  static const struct {
    uint32_t type;
    const char *name;
  } cases[] = {
      {0x10100e01u, "269487617"}, /* UpdateContainer (historic) */
      {0x10100f01u, "269487873"}, /* LifecycleNotification */
      {0x10109901u, "269523201"},
      {0x10100b02u, "269486850"}, /* version 2 of a known message */
      {0x20100101u, "ComputeSystemResponseCreateV1"},
      {0x00000000u, "None"},
      {0x10200101u, "270532865"}, /* ModifyServiceSettings (Windows) */
  };
  char want[256];
  size_t i;
  gc_t c;
  gc_frame_t f;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    send_base(&c, cases[i].type, 10 + i, GC_NULL_ID);
    gc_expect(&c, 10 + i, 0x20000000u | (cases[i].type & 0x0FFFFFFFu),
              E_NOTIMPL, &f);
    snprintf(want, sizeof want,
             "HRESULT 0x80004001: bridge: function not supported, header "
             "type: %s",
             cases[i].name);
    CHECK_STR(gc_str(&f, "ErrorMessage"), want);
    gc_frame_free(&f);
  }
  /* The connection survives all of it. */
  send_base(&c, T_DUMP_STACKS, 99, GC_NULL_ID);
  gc_expect(&c, 99, RESP(T_DUMP_STACKS), 0, NULL);
  stop_ok(&c);
}

static void test_malformed_json(void) {
  gc_t c;
  gc_frame_t f;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);

  gc_send_raw(&c, T_EXECUTE, 2, "{\"ContainerId\": \"0000\", \"Settings\": {",
              37);
  gc_expect(&c, 2, RESP(T_EXECUTE), E_JSON, &f);
  CHECK(!gc_has(&f, "ActivityId")); /* nothing could be extracted */
  check_contains(gc_str(&f, "ErrorMessage"),
                 "failed to unmarshal JSON in message \"{\"ContainerId\": "
                 "\"0000\", \"Settings\": {\": HRESULT 0xc037010d: ");
  gc_frame_free(&f);

  gc_send_raw(&c, T_WAIT, 3, "this is not json at all", 23);
  gc_expect(&c, 3, RESP(T_WAIT), E_JSON, NULL);

  /* Size 16: an empty body. */
  gc_send_raw(&c, T_SIGNAL, 4, "", 0);
  gc_expect(&c, 4, RESP(T_SIGNAL), E_JSON, &f);
  CHECK_STR(gc_str(&f, "ErrorMessage"),
            "failed to unmarshal JSON in message \"\": HRESULT 0xc037010d: "
            "unexpected end of JSON input");
  gc_frame_free(&f);

  /* A field of the wrong type, Go's wording. */
  gc_sendf(&c, T_WAIT, 5, "{\"ContainerId\":\"%s\",\"ProcessId\":\"12\"}",
           GC_NULL_ID);
  gc_expect(&c, 5, RESP(T_WAIT), E_JSON, &f);
  check_contains(gc_str(&f, "ErrorMessage"),
                 "json: cannot unmarshal string into Go struct field "
                 "ContainerWaitForProcess.ProcessId of type uint32");
  gc_frame_free(&f);

  gc_send_raw(&c, T_WAIT, 6, "[]", 2);
  gc_expect(&c, 6, RESP(T_WAIT), E_JSON, NULL);

  /* A broken JSON-in-string field: the ActivityId is still echoed. */
  gc_sendf(&c, T_EXECUTE, 7,
           "{\"ContainerId\":\"%s\",\"ActivityId\":\"" AID
           "\",\"Settings\":"
           "{\"ProcessParameters\":\"{broken\"}}",
           GC_NULL_ID);
  gc_expect(&c, 7, RESP(T_EXECUTE), E_JSON, &f);
  CHECK_STR(gc_str(&f, "ActivityId"), AID);
  check_contains(gc_str(&f, "ErrorMessage"),
                 "failed to unmarshal JSON for ProcessParameters \"{broken\"");
  gc_frame_free(&f);

  /* DumpStacks never decodes its body. */
  gc_send_raw(&c, T_DUMP_STACKS, 8, "garbage", 7);
  gc_expect(&c, 8, RESP(T_DUMP_STACKS), 0, &f);
  CHECK(!gc_has(&f, "ActivityId"));
  CHECK(gc_has(&f, "GuestStacks"));
  gc_frame_free(&f);

  /* Start decodes and succeeds for any container. */
  send_base(&c, T_START, 9, "no-such-container");
  gc_expect(&c, 9, RESP(T_START), 0, NULL);
  stop_ok(&c);
}

static void test_ids_echoed_and_pipelined(void) {
  gc_t c;
  gc_frame_t f;
  uint32_t pid;
  int i;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  pid = exec_ok(&c, 2, GC_NULL_ID, sh_params("sleep 0.6", ""), 0, 0, 0);
  /* Sent back to back; answered in completion order: the waits do not hold
   * up DumpStacks, the short timeout fires before the exit. */
  send_wait(&c, 3, GC_NULL_ID, pid, INFINITE);
  send_wait(&c, 4, GC_NULL_ID, pid, "150");
  send_base(&c, T_DUMP_STACKS, 0, GC_NULL_ID);
  send_base(&c, T_DUMP_STACKS, UINT64_MAX, GC_NULL_ID);
  send_base(&c, T_DUMP_STACKS, 7777, GC_NULL_ID);
  send_base(&c, T_DUMP_STACKS, 7777, GC_NULL_ID);

  {
    const uint64_t order[] = {0, UINT64_MAX, 7777, 7777, 4, 3};
    for (i = 0; i < 6; i++) {
      CHECK_EQ(gc_recv(&c, &f, 5000), 0);
      CHECK_U64(f.id, order[i]);
      if (i < 4) CHECK_EQ(f.type, RESP(T_DUMP_STACKS));
      if (i == 4) CHECK_EQ(gc_result(&f), E_TIMEOUT);
      if (i == 5) CHECK_EQ(gc_u64(&f, "ExitCode"), 0);
      gc_frame_free(&f);
    }
  }
  stop_ok(&c);
}

static void test_size_below_16_closes(void) {
  static const uint8_t bad[16] = {0x01, 0x06, 0x10, 0x10, 8, 0, 0, 0,
                                  42,   0,    0,    0,    0, 0, 0, 0};
  char err[2048];
  gc_t c;
  gc_frame_t f;
  int st;

  gc_start(&c, NULL, 1);
  gc_negotiate(&c);
  CHECK(write(c.fd, bad, sizeof bad) == (ssize_t)sizeof bad);
  /* No answer: the connection ends. */
  CHECK_EQ(gc_recv(&c, &f, 3000), -EPIPE);
  gc_stderr(&c, err, sizeof err, 2000);
  check_contains(err, "Size 8 < 16");
  st = gc_stop(&c);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 1);
}

static void test_oversize_frame_answered(void) {
  static const char *const extra[] = {"--max-frame", "1024", NULL};
  static char big[4096];
  gc_t c;
  gc_frame_t f;

  memset(big, ' ', sizeof big);
  memcpy(big, "{\"ContainerId\":\"x\"}", 19);
  gc_start(&c, extra, 0);
  gc_negotiate(&c);
  gc_send_raw(&c, T_DUMP_STACKS, 5, big, sizeof big);
  gc_expect(&c, 5, RESP(T_DUMP_STACKS), E_FAIL, &f);
  check_contains(gc_str(&f, "ErrorMessage"), "exceeds the limit of 1024 bytes");
  gc_frame_free(&f);
  /* The body was skipped, the stream is in sync. */
  send_base(&c, T_DUMP_STACKS, 6, GC_NULL_ID);
  gc_expect(&c, 6, RESP(T_DUMP_STACKS), 0, NULL);
  stop_ok(&c);
}

/* ------------------------------------------------------------------------ */
/* UVM processes */

static void test_uvm_stdio_and_second_wait(void) {
  char out[256], err[256];
  int l0, l1, l2, s0, s1, s2;
  uint32_t pid;
  gc_t c;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  l0 = gc_listen(&c, 1073741825u);
  l1 = gc_listen(&c, 1073741826u);
  l2 = gc_listen(&c, 1073741827u);
  pid = exec_ok(&c, 2, GC_NULL_ID,
                sh_params("read l; echo \"got:$l\"; echo err >&2; exit 3",
                          "\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true,"
                          "\"CreateStdErrPipe\":true"),
                1073741825u, 1073741826u, 1073741827u);
  s0 = gc_accept(l0, 1000);
  s1 = gc_accept(l1, 1000);
  s2 = gc_accept(l2, 1000);
  gc_write(s0, "ping\n");
  shutdown(s0, SHUT_WR);
  gc_read_all(s1, out, sizeof out, 3000);
  gc_read_all(s2, err, sizeof err, 3000);
  CHECK_STR(out, "got:ping\n");
  CHECK_STR(err, "err\n");
  CHECK_EQ(wait_exit(&c, 3, GC_NULL_ID, pid), 3);
  /* The record is gone after the first successful wait. */
  send_wait(&c, 4, GC_NULL_ID, pid, INFINITE);
  gc_expect(&c, 4, RESP(T_WAIT), E_NOT_FOUND, NULL);
  close(s0);
  close(s1);
  close(s2);
  close(l0);
  close(l1);
  close(l2);
  stop_ok(&c);
}

static void test_uvm_stdin_eof_propagates(void) {
  static char big[200000], out[200100];
  int l0, l1, s0, s1;
  uint32_t pid;
  gc_t c;
  size_t i;

  for (i = 0; i < sizeof big - 1; i++) big[i] = (char)('a' + i % 26);
  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  l0 = gc_listen(&c, 11);
  l1 = gc_listen(&c, 12);
  pid = exec_ok(&c, 2, GC_NULL_ID,
                "{\"CommandArgs\":[\"cat\"],\"CreateStdInPipe\":true,"
                "\"CreateStdOutPipe\":true}",
                11, 12, 0);
  s0 = gc_accept(l0, 1000);
  s1 = gc_accept(l1, 1000);
  /* More than a socket buffer, so reading and writing interleave. */
  cat_round_trip(s0, s1, big, out, sizeof out, 5000);
  CHECK_EQ(wait_exit(&c, 3, GC_NULL_ID, pid), 0);
  wait(NULL);
  close(s1);
  close(l0);
  close(l1);
  stop_ok(&c);
}

static void test_uvm_env_cwd_commandline(void) {
  char params[1024], out[1024], want[1024];
  int l1, s1;
  uint32_t pid;
  gc_t c;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  l1 = gc_listen(&c, 21);
  snprintf(
      params, sizeof params,
      "{\"CommandArgs\":[\"/bin/sh\",\"-c\",\"echo \\\"$FOO\\\"; pwd; "
      "echo \\\"${HOME-unset}\\\"\"],\"Environment\":{\"FOO\":\"bar baz\"},"
      "\"WorkingDirectory\":%s,\"CreateStdOutPipe\":true}",
      gc_quote(c.dir));
  pid = exec_ok(&c, 2, GC_NULL_ID, params, 0, 21, 0);
  s1 = gc_accept(l1, 1000);
  gc_read_all(s1, out, sizeof out, 3000);
  /* Exactly the given environment: nothing inherited from the emulator. */
  snprintf(want, sizeof want, "bar baz\n%s\nunset\n", c.dir);
  CHECK_STR(out, want);
  CHECK_EQ(wait_exit(&c, 3, GC_NULL_ID, pid), 0);

  /* CommandLine, split like a shell without expansion. */
  pid = exec_ok(&c, 4, GC_NULL_ID,
                "{\"CommandLine\":\"/bin/sh -c \\\"exit 7\\\"\","
                "\"CreateInUtilityVM\":true}",
                0, 0, 0);
  CHECK_EQ(wait_exit(&c, 5, GC_NULL_ID, pid), 7);
  close(s1);
  close(l1);
  stop_ok(&c);
}

static void test_uvm_wait_timeout_then_wait(void) {
  long long t0;
  uint32_t pid;
  gc_t c;
  gc_frame_t f;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  pid = exec_ok(&c, 2, GC_NULL_ID,
                "{\"CommandArgs\":[\"/bin/sleep\",\"0.5\"],"
                "\"CreateInUtilityVM\":true}",
                0, 0, 0);
  t0 = now_ms();
  send_wait(&c, 3, GC_NULL_ID, pid, "100");
  gc_expect(&c, 3, RESP(T_WAIT), E_TIMEOUT, &f);
  CHECK(now_ms() - t0 >= 90);
  CHECK_STR(gc_str(&f, "ErrorMessage"), "HRESULT: 0xc0370109");
  CHECK(!gc_has(&f, "ExitCode"));
  gc_frame_free(&f);
  /* Still waitable. */
  CHECK_EQ(wait_exit(&c, 4, GC_NULL_ID, pid), 0);
  stop_ok(&c);
}

static void test_uvm_exit_codes_and_errors(void) {
  gc_t c;
  gc_frame_t f;
  uint32_t pid;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  /* Death by signal: Go's ExitCode() is -1. */
  pid = exec_ok(&c, 2, GC_NULL_ID, sh_params("kill -9 $$", ""), 0, 0, 0);
  CHECK_U64(wait_exit(&c, 3, GC_NULL_ID, pid), 4294967295u);

  /* UVM processes cannot be signalled or resized by this guest. */
  pid = exec_ok(&c, 4, GC_NULL_ID, sh_params("sleep 5", ""), 0, 0, 0);
  send_signal(&c, 5, GC_NULL_ID, pid, 15);
  gc_expect(&c, 5, RESP(T_SIGNAL), E_NO_SYSTEM, NULL);
  send_resize(&c, 6, GC_NULL_ID, pid, 10, 10);
  gc_expect(&c, 6, RESP(T_RESIZE), E_NO_SYSTEM, NULL);

  send_wait(&c, 7, GC_NULL_ID, 999999, INFINITE);
  gc_expect(&c, 7, RESP(T_WAIT), E_NOT_FOUND, NULL);
  send_wait(&c, 8, "no-such-container", 1, INFINITE);
  gc_expect(&c, 8, RESP(T_WAIT), E_NO_SYSTEM, NULL);

  send_exec(
      &c, 9, GC_NULL_ID,
      "{\"CommandArgs\":[\"/no/such/binary\"],\"CreateInUtilityVM\":true}", 0,
      0, 0);
  gc_expect(&c, 9, RESP(T_EXECUTE), E_FAIL, &f);
  CHECK_STR(gc_str(&f, "ErrorMessage"),
            "failed to call Start for external process: fork/exec "
            "/no/such/binary: no such file or directory");
  gc_frame_free(&f);
  send_exec(&c, 10, GC_NULL_ID, "{\"CommandArgs\":[\"no-such-command-x\"]}", 0,
            0, 0);
  gc_expect(&c, 10, RESP(T_EXECUTE), E_FAIL, &f);
  check_contains(gc_str(&f, "ErrorMessage"),
                 "exec: \"no-such-command-x\": executable file not found in "
                 "$PATH");
  gc_frame_free(&f);
  send_exec(&c, 11, GC_NULL_ID,
            "{\"CommandArgs\":[\"/bin/true\"],\"WorkingDirectory\":"
            "\"/no/such/dir\"}",
            0, 0, 0);
  gc_expect(&c, 11, RESP(T_EXECUTE), E_FAIL, &f);
  check_contains(gc_str(&f, "ErrorMessage"),
                 "chdir /no/such/dir: no such file or directory");
  gc_frame_free(&f);
  stop_ok(&c);
}

static void test_uvm_emulate_console(void) {
  static const char *const extra[] = {"--allow-uvm-signal", NULL};
  char out[1024];
  int l0, l1, s0, s1;
  uint32_t pid;
  gc_t c;

  gc_start(&c, extra, 0);
  gc_negotiate(&c);
  l0 = gc_listen(&c, 31);
  l1 = gc_listen(&c, 32);
  pid = exec_ok(&c, 2, GC_NULL_ID,
                sh_params("test -t 0 && test -t 1 && echo is-a-tty; "
                          "read x; stty size; exit 4",
                          "\"EmulateConsole\":true,\"CreateStdInPipe\":true,"
                          "\"CreateStdOutPipe\":true"),
                31, 32, 0);
  s0 = gc_accept(l0, 1000);
  s1 = gc_accept(l1, 1000);
  gc_read_until(s1, "is-a-tty\r\n", out, sizeof out, 3000);
  /* --allow-uvm-signal opens resize to UVM processes. */
  send_resize(&c, 3, GC_NULL_ID, pid, 40, 132);
  gc_expect(&c, 3, RESP(T_RESIZE), 0, NULL);
  gc_write(s0, "go\r");
  gc_read_until(s1, "40 132\r\n", out, sizeof out, 3000);
  CHECK_EQ(wait_exit(&c, 4, GC_NULL_ID, pid), 4);
  gc_read_all(s1, out, sizeof out, 3000); /* then EOF */

  /* ...and signals. */
  pid = exec_ok(&c, 5, GC_NULL_ID, sh_params("sleep 5", ""), 0, 0, 0);
  send_signal(&c, 6, GC_NULL_ID, pid, -1); /* no Options: SIGKILL */
  gc_expect(&c, 6, RESP(T_SIGNAL), 0, NULL);
  CHECK_U64(wait_exit(&c, 7, GC_NULL_ID, pid), 4294967295u);
  close(s0);
  close(s1);
  close(l0);
  close(l1);
  stop_ok(&c);
}

/* ConsoleSize [height, width] in ProcessParameters: the real guest has no
 * such field, so a UVM process's pty starts 0x0 whatever the host sent (GNU
 * stty prints "0 0"); --allow-uvm-signal sizes it from a well-formed one
 * and ignores anything else. */
static void test_uvm_console_size(void) {
  static const char *const capable[] = {"--allow-uvm-signal", NULL};
  static const char *const sizes[] = {"[25,90]",   "[25]",   "\"25x90\"",
                                      "[70000,1]", "[-1,5]", "[25,90,1]"};
  char more[256], out[256];
  int allow, l1, s1;
  uint64_t id;
  size_t i;
  uint32_t pid, port;
  gc_t c;

  for (allow = 0; allow < 2; allow++) {
    gc_start(&c, allow ? capable : NULL, 0);
    gc_negotiate(&c);
    id = 2;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      snprintf(more, sizeof more,
               "\"EmulateConsole\":true,\"CreateStdOutPipe\":true,"
               "\"ConsoleSize\":%s",
               sizes[i]);
      port = 41 + (uint32_t)i + 10 * (uint32_t)allow;
      l1 = gc_listen(&c, port);
      pid = exec_ok(&c, id++, GC_NULL_ID, sh_params("stty size", more), 0, port,
                    0);
      s1 = gc_accept(l1, 1000);
      memset(out, 0, sizeof out);
      gc_read_all(s1, out, sizeof out, 3000);
      CHECK_STR(out, allow && i == 0 ? "25 90\r\n" : "0 0\r\n");
      CHECK_EQ(wait_exit(&c, id++, GC_NULL_ID, pid), 0);
      close(s1);
      close(l1);
    }
    stop_ok(&c);
  }
}

static void test_missing_listener_and_late_listener(void) {
  long long t0;
  gc_t c;
  gc_frame_t f;
  int l1, s1;
  char out[64];
  uint32_t pid;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  t0 = now_ms();
  send_exec(&c, 2, GC_NULL_ID,
            "{\"CommandArgs\":[\"/bin/true\"],\"CreateInUtilityVM\":true,"
            "\"CreateStdOutPipe\":true}",
            0, 1073741831u, 0);
  gc_expect(&c, 2, RESP(T_EXECUTE), E_FAIL, &f);
  {
    char want[1024];
    snprintf(want, sizeof want,
             "failed creating stdout Connection: unix Dial port (1073741831) "
             "at %s/1073741831.sock failed: no such file or directory",
             c.dir);
    CHECK_STR(gc_str(&f, "ErrorMessage"), want);
  }
  /* Retried for about a second (10 x 100 ms) before giving up. */
  CHECK(now_ms() - t0 >= 800);
  gc_frame_free(&f);

  /* A listener that appears during the retries is used. */
  send_exec(&c, 3, GC_NULL_ID,
            "{\"CommandArgs\":[\"/bin/echo\",\"late\"],\"CreateStdOutPipe\":"
            "true}",
            0, 77, 0);
  usleep(300000);
  l1 = gc_listen(&c, 77);
  gc_expect(&c, 3, RESP(T_EXECUTE), 0, &f);
  pid = (uint32_t)gc_u64(&f, "ProcessId");
  gc_frame_free(&f);
  s1 = gc_accept(l1, 1000);
  gc_read_all(s1, out, sizeof out, 3000);
  CHECK_STR(out, "late\n");
  CHECK_EQ(wait_exit(&c, 4, GC_NULL_ID, pid), 0);
  close(s1);
  close(l1);
  stop_ok(&c);
}

/* ------------------------------------------------------------------------ */
/* Containers */

#define CAID "5bf16c10-4b9d-4ebc-af36-4f4d5b3b04d6"

static void test_container_lifecycle_and_notification(void) {
  char want[512];
  gc_t c;
  gc_frame_t f;
  uint32_t init;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  send_modify(&c, 2, GC_NULL_ID,
              "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Add\","
              "\"Settings\":{\"ContainerID\":\"c2\",\"ContainerRootPath\":"
              "\"/run/gcs/c/c2/rootfs\",\"Layers\":[{\"Path\":\"/l\"}]}}");
  gc_expect(&c, 2, RESP(T_MODIFY), 0, &f);
  CHECK_STR(f.body, "{\"Result\":0,\"ActivityId\":\"" AID "\"}");
  gc_frame_free(&f);

  send_create(&c, 3, "c2", CAID, "exit 6");
  gc_expect(&c, 3, RESP(T_CREATE), 0, &f);
  CHECK_STR(f.body, "{\"Result\":0,\"ActivityId\":\"" CAID
                    "\",\"SelectedProtocolVersion\":0}");
  gc_frame_free(&f);
  send_create(&c, 4, "c2", AID, "exit 6");
  gc_expect(&c, 4, RESP(T_CREATE), E_EXISTS, NULL);

  /* Start is a no-op; the first exec without OciProcess runs init. */
  send_base(&c, T_START, 5, "c2");
  gc_expect(&c, 5, RESP(T_START), 0, NULL);
  init = exec_ok(&c, 6, "c2", "{}", 0, 0, 0);

  /* Init exits at once, but without an answered wait: no notification. */
  CHECK(gc_quiet(&c, 400));
  send_props(&c, 7, "c2", "\"ProcessList\"");
  gc_expect(&c, 7, RESP(T_GET_PROPERTIES), 0, &f);
  CHECK_STR(gc_str(&f, "Properties"), "{}");
  gc_frame_free(&f);

  CHECK_EQ(wait_exit(&c, 8, "c2", init), 6);
  gc_expect_notification(&c, &f, 2000);
  snprintf(want, sizeof want,
           "{\"ContainerId\":\"c2\",\"ActivityId\":\"" CAID
           "\","
           "\"Type\":\"UnexpectedExit\",\"Operation\":\"None\",\"Result\":0}");
  CHECK_STR(f.body, want);
  gc_frame_free(&f);
  /* Init stays waitable; the notification is not repeated. */
  CHECK_EQ(wait_exit(&c, 9, "c2", init), 6);
  CHECK(gc_quiet(&c, 200));
  /* A second init is refused. */
  send_exec(&c, 10, "c2", "{}", 0, 0, 0);
  gc_expect(&c, 10, RESP(T_EXECUTE), E_FAIL, NULL);
  /* Stopping a stopped container is not an error. */
  send_base(&c, T_SHUTDOWN_FORCED, 11, "c2");
  gc_expect(&c, 11, RESP(T_SHUTDOWN_FORCED), 0, NULL);

  send_modify(&c, 12, GC_NULL_ID,
              "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Remove\","
              "\"Settings\":{\"ContainerRootPath\":\"/run/gcs/c/c2/rootfs\"}}");
  gc_expect(&c, 12, RESP(T_MODIFY), 0, NULL);
  send_base(&c, T_DELETE, 13, "c2");
  gc_expect(&c, 13, RESP(T_DELETE), 0, NULL);
  send_base(&c, T_DELETE, 14, "c2");
  gc_expect(&c, 14, RESP(T_DELETE), E_NO_SYSTEM, NULL);
  send_props(&c, 15, "c2", "\"ProcessList\"");
  gc_expect(&c, 15, RESP(T_GET_PROPERTIES), E_NO_SYSTEM, NULL);
  send_wait(&c, 16, "c2", init, INFINITE);
  gc_expect(&c, 16, RESP(T_WAIT), E_NO_SYSTEM, NULL);
  stop_ok(&c);
}

/* DeleteContainerState removes the bundle directory: with the overlay
 * still mounted below it a v0.11.8 GCS fails with this exact E_FAIL, and
 * forgets the container anyway; a running one adds runc's failure. */
static void test_delete_with_layers_mounted(void) {
  gc_t c;
  gc_frame_t f;
  uint32_t init;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  send_modify(&c, 2, GC_NULL_ID,
              "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Add\","
              "\"Settings\":{\"ContainerID\":\"c4\",\"ContainerRootPath\":"
              "\"/run/gcs/c/c4/rootfs\",\"Layers\":[{\"Path\":\"/l\"}]}}");
  gc_expect(&c, 2, RESP(T_MODIFY), 0, NULL);
  /* A mount beside the bundle ("/run/gcs/c/c4x") is not below it. */
  send_modify(&c, 3, GC_NULL_ID,
              "{\"ResourceType\":\"MappedVirtualDisk\",\"Settings\":"
              "{\"MountPath\":\"/run/gcs/c/c4x\",\"Lun\":3}}");
  gc_expect(&c, 3, RESP(T_MODIFY), 0, NULL);
  send_create(&c, 4, "c4", CAID, "exit 0");
  gc_expect(&c, 4, RESP(T_CREATE), 0, NULL);
  send_base(&c, T_DELETE, 5, "c4");
  gc_expect(&c, 5, RESP(T_DELETE), E_FAIL, &f);
  CHECK_STR(gc_str(&f, "ErrorMessage"),
            "unlinkat /run/gcs/c/c4: directory not empty");
  gc_frame_free(&f);
  send_base(&c, T_DELETE, 6, "c4");
  gc_expect(&c, 6, RESP(T_DELETE), E_NO_SYSTEM, NULL);

  /* Running, and still mounted. */
  send_create(&c, 7, "c4", CAID, "sleep 1000");
  gc_expect(&c, 7, RESP(T_CREATE), 0, NULL);
  init = exec_ok(&c, 8, "c4", "{}", 0, 0, 0);
  (void)init;
  send_base(&c, T_DELETE, 9, "c4");
  gc_expect(&c, 9, RESP(T_DELETE), E_FAIL, &f);
  CHECK_STR(gc_str(&f, "ErrorMessage"),
            "errors deleting container state: cannot delete container c4 "
            "that is not stopped; unlinkat /run/gcs/c/c4: directory not empty");
  gc_frame_free(&f);

  /* Removed first, the delete succeeds; what is left is counted. */
  send_create(&c, 10, "c4", CAID, "exit 0");
  gc_expect(&c, 10, RESP(T_CREATE), 0, NULL);
  send_modify(&c, 11, GC_NULL_ID,
              "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Remove\","
              "\"Settings\":{\"ContainerRootPath\":\"/run/gcs/c/c4/rootfs\"}}");
  gc_expect(&c, 11, RESP(T_MODIFY), 0, NULL);
  send_base(&c, T_DELETE, 12, "c4");
  gc_expect(&c, 12, RESP(T_DELETE), 0, NULL);
  send_base(&c, T_DUMP_STACKS, 13, GC_NULL_ID);
  gc_expect(&c, 13, RESP(T_DUMP_STACKS), 0, &f);
  check_contains(gc_str(&f, "GuestStacks"),
                 "\nresources: 1\n  MappedVirtualDisk /run/gcs/c/c4x\n");
  gc_frame_free(&f);
  stop_ok(&c);
}

/* --fail-request N: the Nth request after negotiation fails, untouched. */
static void test_fail_request_injection(void) {
  static const char *const extra[] = {"--fail-request", "2", "--fail-request",
                                      "4", NULL};
  gc_t c;
  gc_frame_t f;

  gc_start(&c, extra, 0);
  gc_negotiate(&c);
  send_modify(&c, 2, GC_NULL_ID,
              "{\"ResourceType\":\"MappedDirectory\",\"Settings\":"
              "{\"MountPath\":\"/run/mounts/d1\",\"Port\":564}}");
  gc_expect(&c, 2, RESP(T_MODIFY), 0, NULL);
  send_modify(&c, 3, GC_NULL_ID,
              "{\"ResourceType\":\"MappedDirectory\",\"Settings\":"
              "{\"MountPath\":\"/run/mounts/d2\",\"Port\":564}}");
  gc_expect(&c, 3, RESP(T_MODIFY), E_FAIL, &f);
  CHECK_STR(gc_str(&f, "ErrorMessage"),
            "injected failure of request 2 (--fail-request)");
  gc_frame_free(&f);
  send_base(&c, T_DUMP_STACKS, 4, GC_NULL_ID);
  gc_expect(&c, 4, RESP(T_DUMP_STACKS), 0, &f);
  check_contains(gc_str(&f, "GuestStacks"),
                 "\nresources: 1\n  MappedDirectory /run/mounts/d1\n");
  gc_frame_free(&f);
  send_base(&c, T_DUMP_STACKS, 5, GC_NULL_ID);
  gc_expect(&c, 5, RESP(T_DUMP_STACKS), E_FAIL, NULL);
  send_base(&c, T_DUMP_STACKS, 6, GC_NULL_ID);
  gc_expect(&c, 6, RESP(T_DUMP_STACKS), 0, NULL);
  stop_ok(&c);
}

static void test_container_create_errors(void) {
  gc_t c;
  gc_frame_t f;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  /* No OciSpecification: the real guest panics; we answer. */
  gc_sendf(&c, T_CREATE, 2,
           "{\"ContainerId\":\"c3\",\"ActivityId\":\"" AID
           "\","
           "\"ContainerConfig\":%s}",
           gc_quote("{\"SchemaVersion\":{\"Major\":2,\"Minor\":1}}"));
  gc_expect(&c, 2, RESP(T_CREATE), E_JSON, &f);
  check_contains(gc_str(&f, "ErrorMessage"), "OciSpecification");
  gc_frame_free(&f);
  gc_sendf(&c, T_CREATE, 3,
           "{\"ContainerId\":\"c3\",\"ActivityId\":\"" AID
           "\","
           "\"ContainerConfig\":%s}",
           gc_quote("{\"SchemaVersion\": {\"Major\": 2, \"Minor\": 0}}"));
  gc_expect(&c, 3, RESP(T_CREATE), E_JSON, &f);
  CHECK_STR(gc_str(&f, "ErrorMessage"),
            "HRESULT 0xc037010d: invalid schema version: {2 0}");
  gc_frame_free(&f);
  /* IDs end up in paths: runc's rules. */
  send_create(&c, 4, "../etc", AID, "true");
  gc_expect(&c, 4, RESP(T_CREATE), E_INVALIDARG, NULL);
  send_create(&c, 5, "a/b", AID, "true");
  gc_expect(&c, 5, RESP(T_CREATE), E_INVALIDARG, NULL);
  {
    char longid[300];
    memset(longid, 'a', 299);
    longid[299] = '\0';
    send_create(&c, 6, longid, AID, "true");
    gc_expect(&c, 6, RESP(T_CREATE), E_INVALIDARG, NULL);
  }
  /* A ContainerConfig that is an object, not a string. */
  gc_sendf(&c, T_CREATE, 7,
           "{\"ContainerId\":\"c3\",\"ActivityId\":\"" AID
           "\","
           "\"ContainerConfig\":{}}");
  gc_expect(&c, 7, RESP(T_CREATE), E_JSON, NULL);
  /* Everything above was refused; the guest lives on. */
  send_create(&c, 8, "c3", AID, "true");
  gc_expect(&c, 8, RESP(T_CREATE), 0, NULL);
  stop_ok(&c);
}

static void test_container_stdio_signals_tty(void) {
  char out[1024], err[256];
  int l[5], s[5], i;
  uint32_t init, sleeper, tty, echoer;
  gc_t c;
  gc_frame_t f;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  for (i = 0; i < 5; i++) l[i] = gc_listen(&c, 101 + i);
  send_create(&c, 2, "c1", CAID,
              "trap 'echo got-TERM; exit 143' TERM; echo hello; read l; "
              "echo \"got:$l\"; echo err >&2; sleep 1000 & wait");
  gc_expect(&c, 2, RESP(T_CREATE), 0, NULL);
  init = exec_ok(&c, 3, "c1",
                 "{\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true,"
                 "\"CreateStdErrPipe\":true}",
                 101, 102, 103);
  for (i = 0; i < 3; i++) s[i] = gc_accept(l[i], 1000);
  send_wait(&c, 4, "c1", init, INFINITE); /* outstanding until the end */
  gc_read_until(s[1], "hello\n", out, sizeof out, 3000);
  gc_write(s[0], "line-for-init\n");
  gc_read_until(s[1], "got:line-for-init\n", out, sizeof out, 3000);
  gc_read_until(s[2], "err\n", err, sizeof err, 3000);

  /* ProcessList: init and its background sleep, ascending. */
  {
    pid_t pids[8];
    CHECK_EQ(process_list(&c, 1000, "c1", 2, pids, 8), 2);
    CHECK_EQ(pids[0], (pid_t)init);
    CHECK(pids[1] > 0 && pids[1] != (pid_t)init);
  }
  send_props(&c, 6, "c1", "\"Statistics\"");
  gc_expect(&c, 6, RESP(T_GET_PROPERTIES), 0, &f);
  {
    json_object *props = NULL, *m;
    CHECK_EQ(hcsb__json_parse(gc_str(&f, "Properties"),
                              strlen(gc_str(&f, "Properties")), &props),
             0);
    m = hcsb__json_get(props, "LCOWMetrics");
    CHECK(m != NULL);
    CHECK_EQ(json_object_get_int64(
                 hcsb__json_get(hcsb__json_get(m, "pids"), "current")),
             2);
    CHECK(json_object_get_int64(hcsb__json_get(
              hcsb__json_get(hcsb__json_get(m, "memory"), "usage"), "usage")) >
          0);
    CHECK(hcsb__json_get(hcsb__json_get(m, "cpu"), "throttling") != NULL);
    json_object_put(props);
  }
  gc_frame_free(&f);

  /* An exec without a tty: not resizable; SIGTERM gives 128+15. */
  sleeper = exec_ok(&c, 7, "c1", oci_params("exec sleep 1000", 0, ""), 0, 0, 0);
  send_resize(&c, 8, "c1", sleeper, 10, 10);
  gc_expect(&c, 8, RESP(T_RESIZE), E_FAIL, &f);
  {
    char want[128];
    snprintf(want, sizeof want, "pid: %u, is not a tty and cannot be resized",
             sleeper);
    CHECK_STR(gc_str(&f, "ErrorMessage"), want);
  }
  gc_frame_free(&f);
  send_signal(&c, 9, "c1", 999999, 15);
  gc_expect(&c, 9, RESP(T_SIGNAL), E_NOT_FOUND, NULL);
  send_signal(&c, 10, "c1", sleeper, 15);
  gc_expect(&c, 10, RESP(T_SIGNAL), 0, NULL);
  CHECK_EQ(wait_exit(&c, 11, "c1", sleeper), 143);
  send_signal(&c, 12, "c1", sleeper, 9);
  gc_expect(&c, 12, RESP(T_SIGNAL), E_NOT_FOUND, NULL);
  /* UVM IDs do not reach container processes. */
  send_signal(&c, 13, GC_NULL_ID, init, 9);
  gc_expect(&c, 13, RESP(T_SIGNAL), E_NO_SYSTEM, NULL);

  /* A tty exec: stty sees the size set by ResizeConsole. */
  tty =
      exec_ok(&c, 14, "c1",
              oci_params("stty size; read x; stty size; exit 9", 1,
                         "\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true"),
              104, 105, 0);
  s[3] = gc_accept(l[3], 1000);
  s[4] = gc_accept(l[4], 1000);
  gc_read_until(s[4], "0 0\r\n", out, sizeof out, 3000);
  send_resize(&c, 15, "c1", tty, 40, 132);
  gc_expect(&c, 15, RESP(T_RESIZE), 0, NULL);
  gc_write(s[3], "go\r");
  gc_read_until(s[4], "40 132\r\n", out, sizeof out, 3000);
  CHECK_EQ(wait_exit(&c, 16, "c1", tty), 9);
  gc_read_all(s[4], out, sizeof out, 3000);

  /* protocol.md §9.5: a non-tty exec is reported only after the host drained
   * and closed its output. */
  {
    int l6 = gc_listen(&c, 106), s6;
    echoer = exec_ok(&c, 17, "c1",
                     oci_params("echo drained", 0, "\"CreateStdOutPipe\":true"),
                     0, 106, 0);
    s6 = gc_accept(l6, 1000);
    send_wait(&c, 18, "c1", echoer, "300");
    gc_expect(&c, 18, RESP(T_WAIT), E_TIMEOUT, NULL);
    gc_read_all(s6, out, sizeof out, 3000); /* the guest half-closed */
    CHECK_STR(out, "drained\n");
    send_wait(&c, 19, "c1", echoer, "300");
    gc_expect(&c, 19, RESP(T_WAIT), E_TIMEOUT, NULL); /* still ours to close */
    close(s6);
    CHECK_EQ(wait_exit(&c, 20, "c1", echoer), 0);
    close(l6);
  }

  /* Graceful shutdown: SIGTERM to init; its wait is answered once the
   * output drained, and then the notification says GracefulExit. */
  send_base(&c, T_SHUTDOWN_GRACEFUL, 21, "c1");
  gc_expect(&c, 21, RESP(T_SHUTDOWN_GRACEFUL), 0, NULL);
  gc_read_all(s[1], out, sizeof out, 3000);
  check_contains(out, "got-TERM\n");
  gc_read_all(s[2], err, sizeof err, 3000);
  CHECK(gc_quiet(&c, 200)); /* not before we closed our ends */
  close(s[1]);
  close(s[2]);
  CHECK_EQ(gc_recv(&c, &f, 3000), 0);
  CHECK_U64(f.id, 4); /* the wait first... */
  CHECK_EQ(gc_u64(&f, "ExitCode"), 143);
  gc_frame_free(&f);
  gc_expect_notification(&c, &f, 2000); /* ...then the notification */
  CHECK_STR(gc_str(&f, "Type"), "GracefulExit");
  CHECK_STR(gc_str(&f, "ActivityId"), CAID);
  gc_frame_free(&f);

  for (i = 0; i < 5; i++) {
    close(l[i]);
    if (i != 1 && i != 2) close(s[i]);
  }
  stop_ok(&c);
}

static void test_container_forced_kills_members(void) {
  gc_t c;
  gc_frame_t f;
  uint32_t init;
  pid_t bg = 0;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  send_create(&c, 2, "c4", CAID, "sleep 1000 & wait");
  gc_expect(&c, 2, RESP(T_CREATE), 0, NULL);
  init = exec_ok(&c, 3, "c4", "{}", 0, 0, 0);
  send_wait(&c, 4, "c4", init, INFINITE);
  /* Find the background sleep. */
  {
    pid_t pids[8];
    CHECK_EQ(process_list(&c, 1000, "c4", 2, pids, 8), 2);
    bg = pids[1];
  }
  CHECK(bg > 0);
  send_base(&c, T_SHUTDOWN_FORCED, 200, "c4");
  gc_expect(&c, 200, RESP(T_SHUTDOWN_FORCED), 0, NULL);
  gc_expect(&c, 4, RESP(T_WAIT), 0, &f);
  CHECK_EQ(gc_u64(&f, "ExitCode"), 137); /* 128 + SIGKILL */
  gc_frame_free(&f);
  gc_expect_notification(&c, &f, 2000);
  CHECK_STR(gc_str(&f, "Type"), "ForcedExit");
  gc_frame_free(&f);
  /* Like a PID namespace losing its init: the rest went too. */
  CHECK(gc_pid_gone(bg, 2000));

  /* Delete of a running container: refused, forgotten, processes gone. */
  send_create(&c, 201, "c5", CAID, "exec sleep 1000");
  gc_expect(&c, 201, RESP(T_CREATE), 0, NULL);
  init = exec_ok(&c, 202, "c5", "{}", 0, 0, 0);
  send_base(&c, T_DELETE, 203, "c5");
  gc_expect(&c, 203, RESP(T_DELETE), E_INVALID_STATE, NULL);
  send_base(&c, T_DELETE, 204, "c5");
  gc_expect(&c, 204, RESP(T_DELETE), E_NO_SYSTEM, NULL);
  CHECK(gc_pid_gone((pid_t)init, 2000));
  stop_ok(&c);
}

static void test_modify_settings_rules(void) {
  gc_t c;
  gc_frame_t f;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  send_modify(&c, 2, GC_NULL_ID,
              "{\"ResourceType\":\"NoSuchResource\",\"RequestType\":\"Add\","
              "\"Settings\":{}}");
  gc_expect(&c, 2, RESP(T_MODIFY), E_FAIL, &f);
  check_contains(gc_str(&f, "ErrorMessage"),
                 "\": invalid ResourceType 'NoSuchResource'");
  gc_frame_free(&f);
  send_modify(&c, 3, "no-such-container",
              "{\"ResourceType\":\"ContainerConstraints\",\"RequestType\":"
              "\"Update\",\"Settings\":{\"Linux\":{}}}");
  gc_expect(&c, 3, RESP(T_MODIFY), E_NO_SYSTEM, NULL);
  send_modify(&c, 4, GC_NULL_ID,
              "{\"ResourceType\":\"SCSIDevice\",\"RequestType\":\"Add\","
              "\"Settings\":{\"Controller\":0,\"Lun\":1}}");
  gc_expect(&c, 4, RESP(T_MODIFY), E_FAIL, NULL);
  /* Unmounting what is not there is a no-op in the guest
   * (storage.UnmountPath), so a lost answer can be retried. */
  send_modify(&c, 5, GC_NULL_ID,
              "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Remove\","
              "\"Settings\":{\"ContainerRootPath\":\"/never/mounted\"}}");
  gc_expect(&c, 5, RESP(T_MODIFY), 0, NULL);
  send_modify(&c, 6, GC_NULL_ID,
              "{\"ResourceType\":\"MappedVirtualDisk\",\"Settings\":"
              "{\"MountPath\":5}}");
  gc_expect(&c, 6, RESP(T_MODIFY), E_JSON, NULL);
  send_modify(&c, 7, GC_NULL_ID,
              "{\"ResourceType\":\"HvSocket\",\"RequestType\":\"Update\"}");
  gc_expect(&c, 7, RESP(T_MODIFY), E_FAIL, NULL);
  send_modify(&c, 8, GC_NULL_ID, "\"not an object\"");
  gc_expect(&c, 8, RESP(T_MODIFY), E_JSON, NULL);
  /* RequestType defaults to Add. */
  send_modify(&c, 9, GC_NULL_ID,
              "{\"ResourceType\":\"MappedVirtualDisk\",\"Settings\":"
              "{\"MountPath\":\"/run/mounts/m0\",\"Lun\":0,\"Controller\":0}}");
  gc_expect(&c, 9, RESP(T_MODIFY), 0, NULL);
  send_base(&c, T_DUMP_STACKS, 10, GC_NULL_ID);
  gc_expect(&c, 10, RESP(T_DUMP_STACKS), 0, &f);
  check_contains(gc_str(&f, "GuestStacks"), "MappedVirtualDisk /run/mounts/m0");
  gc_frame_free(&f);
  stop_ok(&c);
}

static void test_dump_stacks_describes_state(void) {
  char want[128];
  gc_t c;
  gc_frame_t f;
  uint32_t pid;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  pid = exec_ok(&c, 2, GC_NULL_ID, sh_params("sleep 5", ""), 0, 0, 0);
  send_wait(&c, 3, GC_NULL_ID, pid, INFINITE);
  send_create(&c, 4, "c6", CAID, "true");
  gc_expect(&c, 4, RESP(T_CREATE), 0, NULL);
  send_base(&c, T_DUMP_STACKS, 5, GC_NULL_ID);
  gc_expect(&c, 5, RESP(T_DUMP_STACKS), 0, &f);
  check_contains(gc_str(&f, "GuestStacks"), "hcsb-guest");
  snprintf(want, sizeof want, "process %u [running] argv0=/bin/sh waits=1",
           pid);
  check_contains(gc_str(&f, "GuestStacks"), want);
  check_contains(gc_str(&f, "GuestStacks"), "container c6 [created]");
  gc_frame_free(&f);
  stop_ok(&c);
}

/* ------------------------------------------------------------------------ */
/* End of the session */

static void test_shutdown_null_id_closes_without_answer(void) {
  gc_t c;
  gc_frame_t f;
  uint32_t pid;
  int st;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  pid = exec_ok(&c, 2, GC_NULL_ID, sh_params("sleep 100", ""), 0, 0, 0);
  send_wait(&c, 3, GC_NULL_ID, pid, INFINITE);
  send_base(&c, T_SHUTDOWN_FORCED, 4, GC_NULL_ID);
  /* No answer to either: the bridge just ends. */
  CHECK_EQ(gc_recv(&c, &f, 3000), -EPIPE);
  st = gc_stop(&c);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0);
  CHECK(gc_pid_gone((pid_t)pid, 2000));
}

static void test_host_close_kills_and_reaps(void) {
  gc_t c;
  uint32_t uvm, init;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  uvm = exec_ok(&c, 2, GC_NULL_ID, sh_params("sleep 100 & sleep 100", ""), 0, 0,
                0);
  send_create(&c, 3, "c7", CAID, "sleep 100");
  gc_expect(&c, 3, RESP(T_CREATE), 0, NULL);
  init = exec_ok(&c, 4, "c7", "{}", 0, 0, 0);
  /* gc_stop closes our end and requires exit status 0 within 5 s. */
  stop_ok(&c);
  /* Killed and reaped by the emulator itself (no zombie was left for
   * anyone else to collect). */
  CHECK(gc_pid_gone((pid_t)uvm, 1000));
  CHECK(gc_pid_gone((pid_t)init, 1000));
}

/* A host that closes with an answer still unread resets the socket; the
 * emulator takes that as the end of the session, as it does EOF. */
static void test_host_reset_ends_session_cleanly(void) {
  struct pollfd pfd;
  gc_t c;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  send_base(&c, T_DUMP_STACKS, 2, GC_NULL_ID);
  pfd.fd = c.fd;
  pfd.events = POLLIN;
  CHECK_EQ(poll(&pfd, 1, gc_scaled(2000)), 1); /* the answer, left unread */
  stop_ok(&c);
}

/* Even a SIGKILL of the emulator (no cleanup possible in it) takes its
 * processes along, as the VM would; the watchdog sees to it. */
static void test_sigkill_takes_processes_along(void) {
  pid_t pids[8];
  uint32_t init, uvm;
  gc_t c;
  int st;

  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  send_create(&c, 2, "c10", CAID, "sleep 100 & wait");
  gc_expect(&c, 2, RESP(T_CREATE), 0, NULL);
  init = exec_ok(&c, 3, "c10", "{}", 0, 0, 0);
  CHECK_EQ(process_list(&c, 100, "c10", 2, pids, 8), 2);
  uvm = exec_ok(&c, 4, GC_NULL_ID, sh_params("sleep 100", ""), 0, 0, 0);
  CHECK(kill(c.pid, SIGKILL) == 0);
  st = gc_stop(&c);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  /* Dead; reaping them is up to whoever inherited them now. */
  CHECK_EQ(pids[0], (pid_t)init);
  CHECK(gc_pid_dead(pids[0], 3000));
  CHECK(gc_pid_dead(pids[1], 3000));
  CHECK(gc_pid_dead((pid_t)uvm, 3000));
}

/* ------------------------------------------------------------------------ */
/* Transports */

static pid_t spawn_guest(const char *const *args, const char *stdio_env) {
  const char *argv[8];
  size_t n = 0;
  pid_t pid;

  argv[n++] = hcsb_test_build_path("src/hcsb-guest");
  while (*args != NULL && n < 7) argv[n++] = *args++;
  argv[n] = NULL;
  fflush(NULL);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    if (stdio_env != NULL)
      setenv("HCSB_STDIO_DIR", stdio_env, 1);
    else
      unsetenv("HCSB_STDIO_DIR");
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

static int unix_connect(const char *path, int timeout_ms) {
  struct sockaddr_un sa;
  int fd, waited;

  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  CHECK(strlen(path) < sizeof sa.sun_path);
  memcpy(sa.sun_path, path, strlen(path) + 1);
  /* The guest starts slowly under valgrind on a loaded machine. */
  timeout_ms = gc_scaled(timeout_ms);
  for (waited = 0; waited < timeout_ms; waited += 10) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    close(fd);
    usleep(10000);
  }
  hcsb_test_fail(__FILE__, __LINE__, "nobody listens on %s", path);
}

static int unix_listen(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  CHECK(fd >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  CHECK(strlen(path) < sizeof sa.sun_path);
  memcpy(sa.sun_path, path, strlen(path) + 1);
  CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
  CHECK(listen(fd, 1) == 0);
  return fd;
}

/* Output of a UVM `echo` through port `port`, checked. */
static void echo_through(gc_t *c, uint64_t id, uint32_t port) {
  char out[64];
  int l = gc_listen(c, port), s;
  uint32_t pid;

  pid = exec_ok(c, id, GC_NULL_ID,
                "{\"CommandArgs\":[\"echo\",\"via-socket\"],"
                "\"CreateStdOutPipe\":true}",
                0, port, 0);
  s = gc_accept(l, 1000);
  gc_read_all(s, out, sizeof out, 3000);
  CHECK_STR(out, "via-socket\n");
  CHECK_EQ(wait_exit(c, id + 1, GC_NULL_ID, pid), 0);
  close(s);
  close(l);
}

static void test_transport_listen_and_sigterm(void) {
  char dir[512], path[600];
  const char *args[] = {"--listen", path, NULL};
  gc_t c;
  gc_frame_t f;
  uint32_t pid;
  pid_t guest;
  int st;

  snprintf(dir, sizeof dir, "%s", hcsb_test_tmpdir());
  snprintf(path, sizeof path, "%s/bridge.sock", dir);
  guest = spawn_guest(args, NULL);
  /* Relays default to the directory of the bridge socket. */
  gc_adopt(&c, guest, unix_connect(path, 3000), dir);
  gc_negotiate(&c);
  echo_through(&c, 2, 41);
  pid = exec_ok(&c, 4, GC_NULL_ID, sh_params("sleep 100", ""), 0, 0, 0);
  /* SIGTERM: everything stops, the bridge closes, exit 0. */
  CHECK(kill(guest, SIGTERM) == 0);
  CHECK_EQ(gc_recv(&c, &f, 3000), -EPIPE);
  st = gc_stop(&c);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0);
  CHECK(gc_pid_gone((pid_t)pid, 2000));
}

static void test_transport_connect_and_env_stdio_dir(void) {
  char dir[512], path[600], sub[600];
  const char *args[] = {"--connect", path, NULL};
  int lfd;
  gc_t c;
  pid_t guest;

  snprintf(dir, sizeof dir, "%s", hcsb_test_tmpdir());
  snprintf(path, sizeof path, "%s/host.sock", dir);
  snprintf(sub, sizeof sub, "%s/relays", dir);
  CHECK(mkdir(sub, 0700) == 0);
  lfd = unix_listen(path);
  /* HCSB_STDIO_DIR (what the library's spawn transport exports) wins over
   * the socket's directory. */
  guest = spawn_guest(args, sub);
  gc_adopt(&c, guest, gc_accept(lfd, 3000), sub);
  close(lfd);
  gc_negotiate(&c);
  echo_through(&c, 2, 42);
  stop_ok(&c);
}

/* Bulk data both ways through a container's pipe relay (back-pressure). */
static void test_container_pipe_relay_bulk(void) {
  static char big[300001], out[300100];
  int l0, l1, s0, s1;
  uint32_t pid, init;
  gc_t c;
  size_t i;

  for (i = 0; i < sizeof big - 1; i++) big[i] = (char)('A' + i % 23);
  gc_start(&c, NULL, 0);
  gc_negotiate(&c);
  send_create(&c, 2, "c8", CAID, "exec sleep 1000");
  gc_expect(&c, 2, RESP(T_CREATE), 0, NULL);
  init = exec_ok(&c, 3, "c8", "{}", 0, 0, 0);
  l0 = gc_listen(&c, 51);
  l1 = gc_listen(&c, 52);
  pid =
      exec_ok(&c, 4, "c8",
              oci_params("cat", 0,
                         "\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true"),
              51, 52, 0);
  s0 = gc_accept(l0, 1000);
  s1 = gc_accept(l1, 1000);
  cat_round_trip(s0, s1, big, out, sizeof out, 10000);
  close(s1);
  CHECK_EQ(wait_exit(&c, 5, "c8", pid), 0);
  wait(NULL);
  send_signal(&c, 6, "c8", init, -1);
  gc_expect(&c, 6, RESP(T_SIGNAL), 0, NULL);
  CHECK_EQ(wait_exit(&c, 7, "c8", init), 137);
  /* Take the exit notification: closing with it unread would reset the
   * emulator's connection instead of ending it. */
  {
    gc_frame_t f;
    gc_expect_notification(&c, &f, 2000);
    CHECK_STR(gc_str(&f, "ContainerId"), "c8");
    gc_frame_free(&f);
  }
  close(l0);
  close(l1);
  stop_ok(&c);
}

/* --vsock only ever dials inside a VM (scripts/uvm, make check-vm): here
 * the parsing and the address are checked, and every usage error must stop
 * the program before it could dial. */
static void test_vsock_addresses(void) {
  struct sockaddr_vm sa;
  uint32_t v = 7;

  CHECK_EQ(hcsb__gvsock_parse_u32("1073741824", &v), 0);
  CHECK_U64(v, 0x40000000u);
  CHECK_EQ(hcsb__gvsock_parse_u32("0x40000001", &v), 0);
  CHECK_U64(v, 0x40000001u);
  CHECK_EQ(hcsb__gvsock_parse_u32("4294967295", &v), 0);
  CHECK_U64(v, 0xFFFFFFFFu);
  v = 7;
  CHECK_EQ(hcsb__gvsock_parse_u32("4294967296", &v), -EINVAL);
  CHECK_EQ(hcsb__gvsock_parse_u32("", &v), -EINVAL);
  CHECK_EQ(hcsb__gvsock_parse_u32("-1", &v), -EINVAL);
  CHECK_EQ(hcsb__gvsock_parse_u32(" 2", &v), -EINVAL);
  CHECK_EQ(hcsb__gvsock_parse_u32("2x", &v), -EINVAL);
  CHECK_EQ(hcsb__gvsock_parse_u32("0x", &v), -EINVAL);
  CHECK_EQ(v, 7);

  memset(&sa, 0xAB, sizeof sa);
  CHECK_EQ(
      hcsb__gvsock_addr(HCSB__G_VSOCK_HOST_CID, HCSB__G_VSOCK_BRIDGE_PORT, &sa),
      0);
  CHECK_EQ(sa.svm_family, AF_VSOCK);
  CHECK_EQ(sa.svm_cid, VMADDR_CID_HOST);
  CHECK_U64(sa.svm_port, 1073741824u);
  CHECK_EQ(sa.svm_reserved1, 0);
  CHECK_EQ(hcsb__gvsock_addr(VMADDR_CID_ANY, 5, &sa), -EINVAL);
  CHECK_EQ(hcsb__gvsock_addr(2, VMADDR_PORT_ANY, &sa), -EINVAL);
}

/* Runs hcsb-guest with `args`; returns its exit status, stderr in `err`. */
static int run_usage(const char *const *args, char *err, size_t cap) {
  const char *argv[16];
  int p[2], st = 0;
  size_t n = 0, len = 0;
  ssize_t r;
  pid_t pid;

  argv[n++] = hcsb_test_build_path("src/hcsb-guest");
  while (*args != NULL && n < 15) argv[n++] = *args++;
  argv[n] = NULL;
  CHECK(pipe(p) == 0);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(p[1], 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(p[1]);
  while (len + 1 < cap && (r = read(p[0], err + len, cap - len - 1)) > 0)
    len += (size_t)r;
  err[len] = '\0';
  close(p[0]);
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static void test_vsock_usage_errors(void) {
  static const char *const both[] = {"--vsock", "--connect", "/x", NULL};
  static const char *const listen[] = {"--listen", "/x", "--vsock", NULL};
  static const char *const bad_port[] = {"--vsock", "--vsock-port", "12x",
                                         NULL};
  static const char *const bad_cid[] = {"--vsock", "--vsock-cid", "-2", NULL};
  static const char *const alone[] = {"--vsock-port", "0x40000000", NULL};
  static const char *const help[] = {"--help", NULL};
  char err[4096];

  CHECK_EQ(run_usage(both, err, sizeof err), 2);
  CHECK(strstr(err, "--listen, --connect and --vsock exclude each other"));
  CHECK_EQ(run_usage(listen, err, sizeof err), 2);
  CHECK(strstr(err, "exclude each other"));
  CHECK_EQ(run_usage(bad_port, err, sizeof err), 2);
  CHECK(strstr(err, "--vsock-port wants a number, not '12x'"));
  CHECK_EQ(run_usage(bad_cid, err, sizeof err), 2);
  CHECK(strstr(err, "--vsock-cid wants a number, not '-2'"));
  CHECK_EQ(run_usage(alone, err, sizeof err), 2);
  CHECK(strstr(err, "--vsock-cid and --vsock-port need --vsock"));
  CHECK_EQ(run_usage(help, err, sizeof err), 0);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(negotiation_rules),
    TEST_ENTRY(negotiation_bytes_match_recording),
    TEST_ENTRY(unknown_types),
    TEST_ENTRY(malformed_json),
    TEST_ENTRY(ids_echoed_and_pipelined),
    TEST_ENTRY(size_below_16_closes),
    TEST_ENTRY(oversize_frame_answered),
    TEST_ENTRY(uvm_stdio_and_second_wait),
    TEST_ENTRY(uvm_stdin_eof_propagates),
    TEST_ENTRY(uvm_env_cwd_commandline),
    TEST_ENTRY(uvm_wait_timeout_then_wait),
    TEST_ENTRY(uvm_exit_codes_and_errors),
    TEST_ENTRY(uvm_emulate_console),
    TEST_ENTRY(uvm_console_size),
    TEST_ENTRY(missing_listener_and_late_listener),
    TEST_ENTRY(container_lifecycle_and_notification),
    TEST_ENTRY(container_create_errors),
    TEST_ENTRY(delete_with_layers_mounted),
    TEST_ENTRY(fail_request_injection),
    TEST_ENTRY(container_stdio_signals_tty),
    TEST_ENTRY(container_forced_kills_members),
    TEST_ENTRY(modify_settings_rules),
    TEST_ENTRY(dump_stacks_describes_state),
    TEST_ENTRY(shutdown_null_id_closes_without_answer),
    TEST_ENTRY(host_close_kills_and_reaps),
    TEST_ENTRY(host_reset_ends_session_cleanly),
    TEST_ENTRY(sigkill_takes_processes_along),
    TEST_ENTRY(transport_listen_and_sigterm),
    TEST_ENTRY(transport_connect_and_env_stdio_dir),
    TEST_ENTRY(container_pipe_relay_bulk),
    TEST_ENTRY(vsock_addresses),
    TEST_ENTRY(vsock_usage_errors),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
