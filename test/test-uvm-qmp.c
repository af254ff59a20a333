/* The QMP codec (src/uvm/qmp.c) with byte strings: what QEMU 7.2 sends,
 * split anywhere; every shape it does not send refused; the bounds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "uvm/qmp.h"

/* Captured from qemu-system-x86_64 7.2 (Debian 12). */
static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "
    "\"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, "
    "\"capabilities\": [\"oob\"]}}\r\n";
static const char ret1[] = "{\"return\": {}, \"id\": 1}\r\n";
static const char status2[] =
    "{\"return\": {\"status\": \"running\", \"singlestep\": false, "
    "\"running\": true}, \"id\": 2}\r\n";
static const char quit_event[] =
    "{\"timestamp\": {\"seconds\": 1796664837, \"microseconds\": 448606}, "
    "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": "
    "\"host-qmp-quit\"}}\r\n";
static const char busy_error[] =
    "{\"id\": 7, \"error\": {\"class\": \"GenericError\", \"desc\": "
    "\"can't use already busy memdev: pmem0\"}}\r\n";

/* Feeds `text` in chunks of `chunk` bytes, collecting up to 8 messages. */
typedef struct got_s {
  hcsb__qmp_msg_t m[8];
  size_t n;
  int err;
} got_t;

static void feed_all(hcsb__qmp_dec_t *d, const char *text, size_t len,
                     size_t chunk, got_t *g) {
  size_t off = 0;
  memset(g, 0, sizeof *g);
  while (off < len && g->err == 0) {
    size_t n = len - off < chunk ? len - off : chunk, used;
    const char *p = text + off;
    off += n;
    while (n > 0) {
      hcsb__qmp_msg_t m;
      int rc = hcsb__qmp_dec_feed(d, p, n, &used, &m);
      if (rc < 0) {
        g->err = rc;
        break;
      }
      CHECK(used <= n);
      if (rc == 0) {
        CHECK_EQ(used, n);
        break;
      }
      CHECK(g->n < 8);
      g->m[g->n++] = m;
      p += used;
      n -= used;
    }
  }
}

static void got_free(got_t *g) {
  for (size_t i = 0; i < g->n; i++) hcsb__qmp_msg_release(&g->m[i]);
}

static void check_session(const got_t *g) {
  json_object *v;
  CHECK_EQ(g->err, 0);
  CHECK_EQ(g->n, 5);
  CHECK_EQ(g->m[0].kind, HCSB__QMP_GREETING);
  CHECK(json_object_object_get_ex(g->m[0].value, "capabilities", &v));
  CHECK_EQ(g->m[1].kind, HCSB__QMP_RETURN);
  CHECK_EQ(g->m[1].has_id, 1);
  CHECK_U64(g->m[1].id, 1);
  CHECK(json_object_is_type(g->m[1].value, json_type_object));
  CHECK_EQ(g->m[2].kind, HCSB__QMP_RETURN);
  CHECK_U64(g->m[2].id, 2);
  CHECK(json_object_object_get_ex(g->m[2].value, "status", &v));
  CHECK_STR(json_object_get_string(v), "running");
  CHECK_EQ(g->m[3].kind, HCSB__QMP_EVENT);
  CHECK_STR(g->m[3].event, "SHUTDOWN");
  CHECK_EQ(g->m[3].ts_seconds, 1796664837);
  CHECK_EQ(g->m[3].ts_microseconds, 448606);
  CHECK(json_object_object_get_ex(g->m[3].value, "reason", &v));
  CHECK_STR(json_object_get_string(v), "host-qmp-quit");
  CHECK_EQ(g->m[3].has_id, 0);
  CHECK_EQ(g->m[4].kind, HCSB__QMP_ERROR);
  CHECK_U64(g->m[4].id, 7);
  CHECK_STR(g->m[4].error_class, "GenericError");
  CHECK_STR(g->m[4].error_desc, "can't use already busy memdev: pmem0");
}

static size_t session(char *buf, size_t cap) {
  int n = snprintf(buf, cap, "%s%s%s%s%s", greeting, ret1, status2, quit_event,
                   busy_error);
  CHECK(n > 0 && (size_t)n < cap);
  return (size_t)n;
}

static void test_qmp_session_whole(void) {
  char buf[2048];
  size_t len = session(buf, sizeof buf);
  hcsb__qmp_dec_t d;
  got_t g;

  CHECK_EQ(hcsb__qmp_dec_init(&d, 0), 0);
  feed_all(&d, buf, len, len, &g);
  check_session(&g);
  got_free(&g);
  hcsb__qmp_dec_free(&d);
}

/* Every chunk size from one byte up: reads split and merge messages. */
static void test_qmp_session_every_split(void) {
  char buf[2048];
  size_t len = session(buf, sizeof buf);

  for (size_t chunk = 1; chunk <= len; chunk += chunk < 40 ? 1 : 37) {
    hcsb__qmp_dec_t d;
    got_t g;
    CHECK_EQ(hcsb__qmp_dec_init(&d, 0), 0);
    feed_all(&d, buf, len, chunk, &g);
    check_session(&g);
    got_free(&g);
    hcsb__qmp_dec_free(&d);
  }
}

static int decode_one(const char *text, size_t max, hcsb__qmp_msg_t *m) {
  hcsb__qmp_dec_t d;
  size_t used;
  int rc;
  CHECK_EQ(hcsb__qmp_dec_init(&d, max), 0);
  rc = hcsb__qmp_dec_feed(&d, text, strlen(text), &used, m);
  if (rc < 0) {
    hcsb__qmp_msg_t again;
    /* Sticky. */
    CHECK_EQ(hcsb__qmp_dec_feed(&d, ret1, strlen(ret1), &used, &again), rc);
    CHECK(m->root == NULL);
  }
  hcsb__qmp_dec_free(&d);
  return rc;
}

static void test_qmp_odd_but_valid(void) {
  hcsb__qmp_msg_t m;

  /* An error answer without an id (QEMU could not parse the command). */
  CHECK_EQ(decode_one("{\"error\": {\"class\": \"GenericError\", \"desc\": "
                      "\"JSON parse error\"}}",
                      0, &m),
           1);
  CHECK_EQ(m.kind, HCSB__QMP_ERROR);
  CHECK_EQ(m.has_id, 0);
  hcsb__qmp_msg_release(&m);
  /* Ids we never send are no ids. */
  CHECK_EQ(decode_one("{\"return\": 5, \"id\": \"x\"}", 0, &m), 1);
  CHECK_EQ(m.has_id, 0);
  CHECK_EQ(json_object_get_int(m.value), 5);
  hcsb__qmp_msg_release(&m);
  CHECK_EQ(decode_one("{\"return\": [], \"id\": -3}", 0, &m), 1);
  CHECK_EQ(m.has_id, 0);
  hcsb__qmp_msg_release(&m);
  /* An event without data or timestamp. */
  CHECK_EQ(decode_one("{\"event\": \"RESUME\"}", 0, &m), 1);
  CHECK_EQ(m.kind, HCSB__QMP_EVENT);
  CHECK(m.value == NULL);
  CHECK_EQ(m.ts_seconds, -1);
  hcsb__qmp_msg_release(&m);
  /* A timestamp of the wrong type is no timestamp. */
  CHECK_EQ(decode_one("{\"event\": \"STOP\", \"timestamp\": {\"seconds\": "
                      "\"1\", \"microseconds\": 2}}",
                      0, &m),
           1);
  CHECK_EQ(m.ts_seconds, -1);
  hcsb__qmp_msg_release(&m);
}

static void test_qmp_refused_shapes(void) {
  static const char *const bad[] = {
      "[1, 2]",
      "17\r\n",
      "\"QMP\"\r\n",
      "{}",
      "{\"execute\": \"quit\"}",
      "{\"error\": \"x\", \"id\": 1}",
      "{\"error\": {\"class\": \"GenericError\"}, \"id\": 1}",
      "{\"error\": {\"class\": 1, \"desc\": \"d\"}, \"id\": 1}",
      "{\"event\": 3}",
      "{\"event\": \"X\", \"data\": [1]}",
      "{\"QMP\": 1}",
      "{\"return\": {} ]",
      "{\"return\": {}, \"id\": 1,}",
      "{\"return\": \"\xff\xfe\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hcsb__qmp_msg_t m;
    int rc = decode_one(bad[i], 0, &m);
    if (rc != -EPROTO)
      hcsb_test_fail(__FILE__, __LINE__, "case %zu (%s): %d", i, bad[i], rc);
  }
}

static void test_qmp_nul_byte(void) {
  static const char text[] = "{\"return\": {}\0, \"id\": 1}";
  hcsb__qmp_dec_t d;
  hcsb__qmp_msg_t m;
  size_t used;

  CHECK_EQ(hcsb__qmp_dec_init(&d, 0), 0);
  CHECK_EQ(hcsb__qmp_dec_feed(&d, text, sizeof text - 1, &used, &m), -EPROTO);
  hcsb__qmp_dec_free(&d);
}

/* A message over the bound fails once the bound is passed, however it
 * arrives, without the rest being read. */
static void test_qmp_size_bound(void) {
  char big[300];
  hcsb__qmp_dec_t d;
  hcsb__qmp_msg_t m;
  size_t used, off = 0;
  int rc = 0;

  memset(big, ' ', sizeof big);
  memcpy(big, "{\"return\": \"", 12);
  memcpy(big + sizeof big - 3, "\"}", 2);
  big[sizeof big - 1] = '\0';
  /* Just fits. */
  CHECK_EQ(decode_one(big, sizeof big - 1, &m), 1);
  hcsb__qmp_msg_release(&m);
  /* One byte too many, whole or byte by byte. */
  CHECK_EQ(decode_one(big, sizeof big - 2, &m), -EMSGSIZE);
  CHECK_EQ(hcsb__qmp_dec_init(&d, 100), 0);
  while (off < sizeof big - 1) {
    rc = hcsb__qmp_dec_feed(&d, big + off, 1, &used, &m);
    if (rc != 0) break;
    off += used;
  }
  CHECK_EQ(rc, -EMSGSIZE);
  CHECK_EQ(off, 100);
  hcsb__qmp_dec_free(&d);
  /* Whitespace between messages counts, but is bounded just the same. */
  memset(big, ' ', sizeof big);
  big[sizeof big - 1] = '\0';
  CHECK_EQ(decode_one(big, 100, &m), -EMSGSIZE);
}

static void test_qmp_depth_bound(void) {
  char deep[200];
  size_t i, n = 0;
  hcsb__qmp_msg_t m;

  n += (size_t)snprintf(deep, sizeof deep, "{\"return\": ");
  for (i = 0; i < 40; i++) deep[n++] = '[';
  for (i = 0; i < 40; i++) deep[n++] = ']';
  deep[n++] = '}';
  deep[n] = '\0';
  CHECK_EQ(decode_one(deep, 0, &m), -EPROTO);
}

static void test_qmp_encode(void) {
  json_object *args = json_object_new_object();
  size_t len;
  char *s;

  s = hcsb__qmp_encode(1, "qmp_capabilities", NULL, &len);
  CHECK_STR(s, "{\"execute\":\"qmp_capabilities\",\"id\":1}\r\n");
  CHECK_EQ(len, strlen(s));
  free(s);
  json_object_object_add(args, "driver",
                         json_object_new_string("virtio-pmem-pci"));
  json_object_object_add(args, "bus", json_object_new_string("rp1"));
  json_object_object_add(args, "path", json_object_new_string("/a/b\"c"));
  s = hcsb__qmp_encode(42, "device_add", args, &len);
  CHECK_STR(s,
            "{\"execute\":\"device_add\",\"arguments\":{\"driver\":"
            "\"virtio-pmem-pci\",\"bus\":\"rp1\",\"path\":\"/a/b\\\"c\"},"
            "\"id\":42}\r\n");
  free(s);
  /* `args` is the caller's still. */
  CHECK_EQ(json_object_object_length(args), 3);
  json_object_put(args);
  CHECK(hcsb__qmp_encode(1, "", NULL, &len) == NULL);
  CHECK(hcsb__qmp_encode(1, NULL, NULL, &len) == NULL);
  CHECK(hcsb__qmp_encode(UINT64_MAX, "quit", NULL, &len) == NULL);
}

/* What the encoder writes, a QEMU-like peer would echo back: round trip
 * of the id through the decoder. */
static void test_qmp_id_round_trip(void) {
  uint64_t ids[] = {0, 1, 255, 65536, (uint64_t)INT64_MAX};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    char text[64];
    hcsb__qmp_msg_t m;
    snprintf(text, sizeof text, "{\"return\": {}, \"id\": %llu}",
             (unsigned long long)ids[i]);
    CHECK_EQ(decode_one(text, 0, &m), 1);
    CHECK_EQ(m.has_id, 1);
    CHECK_U64(m.id, ids[i]);
    hcsb__qmp_msg_release(&m);
  }
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(qmp_session_whole), TEST_ENTRY(qmp_session_every_split),
    TEST_ENTRY(qmp_odd_but_valid), TEST_ENTRY(qmp_refused_shapes),
    TEST_ENTRY(qmp_nul_byte),      TEST_ENTRY(qmp_size_bound),
    TEST_ENTRY(qmp_depth_bound),   TEST_ENTRY(qmp_encode),
    TEST_ENTRY(qmp_id_round_trip),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
