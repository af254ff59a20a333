/* The Properties decoder's shortcuts for what a GCS sends (src/api/props.c:
 * the '{"ProcessList":[' start and {"ProcessId":N} items) against its
 * general rules: random texts mixing the shortcut's shape with near misses
 * (spaces, case, signs, leading zeros, numbers at and past the uint32
 * limit, other keys, null, truncation) decode to the same status and the
 * same items both ways, and a few exact values are checked outright. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"
#include "runner.h"

/* Two containers so both results stay alive for the comparison; only the
 * decoder's buffers of a container are used. */
typedef struct dec_s {
  hcsb_container_t *ct;
  hcsb_properties_t props;
  int rc;
} dec_t;

static hcsb_container_t *new_ct(void) {
  hcsb_container_t *ct = calloc(1, sizeof(*ct) + 1);
  CHECK(ct != NULL);
  return ct;
}

static void free_ct(hcsb_container_t *ct) {
  free(ct->items);
  hcsb__buf_free(&ct->strings);
  hcsb__mstore_free(ct->mstore);
  free(ct);
}

static void decode(dec_t *d, const char *text, int fast_off) {
  hcsb__props_fast_off = fast_off;
  d->rc = hcsb__props_decode(d->ct, text, strlen(text), &d->props);
  hcsb__props_fast_off = 0;
}

static int same_str(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Decodes `text` both ways; fails unless they agree.  Returns the status. */
static int both(dec_t *fast, dec_t *slow, const char *text) {
  /* In an allocation of exactly the text and its NUL, so ASan and
   * valgrind see any read past them; kept until the next call. */
  static char *copy;
  size_t i;

  free(copy);
  copy = strdup(text);
  CHECK(copy != NULL);
  text = copy;
  decode(slow, text, 1);
  decode(fast, text, 0);
  if (fast->rc != slow->rc)
    hcsb_test_fail(__FILE__, __LINE__, "ways disagree on %s: %d vs %d", text,
                   fast->rc, slow->rc);
  if (fast->rc != 0) return fast->rc;
  CHECK_EQ(fast->props.has_process_list, slow->props.has_process_list);
  CHECK_EQ(fast->props.nprocesses, slow->props.nprocesses);
  CHECK_EQ(fast->props.has_statistics, slow->props.has_statistics);
  CHECK(fast->props.json == text && fast->props.json_len == strlen(text));
  for (i = 0; i < fast->props.nprocesses; i++) {
    const hcsb_process_list_item_t *a = &fast->props.processes[i];
    const hcsb_process_list_item_t *b = &slow->props.processes[i];
    CHECK_U64(a->process_id, b->process_id);
    CHECK(same_str(a->image_name, b->image_name));
    CHECK_U64(a->kernel_time_100ns, b->kernel_time_100ns);
    CHECK_U64(a->user_time_100ns, b->user_time_100ns);
    CHECK_U64(a->memory_commit_bytes, b->memory_commit_bytes);
  }
  return 0;
}

static dec_t fast_d, slow_d;

static void setup(void) {
  fast_d.ct = new_ct();
  slow_d.ct = new_ct();
}

static void teardown(void) {
  free_ct(fast_d.ct);
  free_ct(slow_d.ct);
}

static void test_gcs_shape_values(void) {
  static const struct {
    const char *text;
    int rc;
    size_t n;
    uint32_t last;
  } t[] = {
      {"{\"ProcessList\":[{\"ProcessId\":1},{\"ProcessId\":42}]}", 0, 2, 42},
      {"{\"ProcessList\":[]}", 0, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":0}]}", 0, 1, 0},
      {"{\"ProcessList\":[{\"ProcessId\":4294967295}]}", 0, 1, 4294967295u},
      {"{\"ProcessList\":[{\"ProcessId\":1234567890}],\"Other\":[1]}", 0, 1,
       1234567890},
      {"{\"ProcessList\":[{\"ProcessId\":4294967296}]}", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":9999999999}]}", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":12345678901}]}", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":01}]}", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":-1}]}", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":1}", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":1", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":", -EPROTO, 0, 0},
      {"{\"ProcessList\":[", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":1}]", -EPROTO, 0, 0},
      {"{\"ProcessList\":[{\"ProcessId\":1}]}x", -EPROTO, 0, 0},
  };
  size_t i, n;
  char *big;

  setup();
  /* Enough items for the array to grow several times on the way. */
  big = malloc(1000 * 32 + 32);
  CHECK(big != NULL);
  n = (size_t)sprintf(big, "{\"ProcessList\":[");
  for (i = 0; i < 1000; i++)
    n += (size_t)sprintf(big + n, "%s{\"ProcessId\":%zu}", i ? "," : "",
                         i * 4294967u);
  strcpy(big + n, "]}");
  CHECK_EQ(both(&fast_d, &slow_d, big), 0);
  CHECK_EQ(fast_d.props.nprocesses, 1000);
  CHECK_U64(fast_d.props.processes[999].process_id, 999u * 4294967u);
  free(big);
  for (i = 0; i < sizeof t / sizeof t[0]; i++) {
    int rc = both(&fast_d, &slow_d, t[i].text);
    if (rc != t[i].rc)
      hcsb_test_fail(__FILE__, __LINE__, "%s: %d, want %d", t[i].text, rc,
                     t[i].rc);
    if (rc != 0) continue;
    CHECK_EQ(fast_d.props.has_process_list, 1);
    CHECK_EQ(fast_d.props.nprocesses, t[i].n);
    if (t[i].n > 0) {
      const hcsb_process_list_item_t *it = &fast_d.props.processes[t[i].n - 1];
      CHECK_U64(it->process_id, t[i].last);
      CHECK(it->image_name == NULL);
      CHECK_U64(it->kernel_time_100ns, 0);
    }
  }
  teardown();
}

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static unsigned rnd(unsigned n) {
  return (unsigned)(hcsb_test_xorshift(&rng_state) % n);
}

static void test_random_against_general(void) {
  static const char *const starts[] = {"{\"ProcessList\":[",
                                       "{\"ProcessList\":[",
                                       "{\"ProcessList\":[",
                                       " {\"ProcessList\":[",
                                       "{\"processlist\":[",
                                       "{\"ProcessList\" :[",
                                       "{\"Other\":1,\"ProcessList\":[",
                                       "{\"ProcessList\":[ ",
                                       "{\"ProcessLis\":[",
                                       "{\"ProcessList\":{"};
  static const char *const numbers[] = {
      "0",          "1",          "42",        "4294967295", "4294967296",
      "9999999999", "1000000000", "01",        "-1",         "1.5",
      "1e2",        "\"1\"",      "null",      "00",         "12345678901",
      "7",          "65535",      "999999999", "2147483648", "3"};
  static const char *const items[] = {
      "{\"ProcessId\":%s}",
      "{\"ProcessId\":%s}",
      "{\"ProcessId\":%s}",
      "{\"ProcessId\":%s,\"ImageName\":\"a\\\"b\"}",
      "{\"ImageName\":\"init\",\"ProcessId\":%s}",
      "{ \"ProcessId\":%s}",
      "{\"ProcessId\" :%s}",
      "{\"ProcessId\":%s }",
      "{\"processid\":%s}",
      "{\"ProcessID\":%s}",
      "{\"ProcessId\":%s,\"KernelTime100ns\":5}",
      "null",
      "{}",
      "5",
      "{\"ProcessId\":%s}}",
      "{\"ProcessId\":%s,}",
  };
  static const char *const ends[] = {
      "]}", "]}", "]}", "] }", "]} ", "],\"Other\":null}", "]", "]}x", "}"};
  char text[1024], num[32];
  unsigned i, j, n, accepted = 0, refused = 0;

  setup();
  for (i = 0; i < 20000; i++) {
    size_t len = (size_t)snprintf(text, sizeof text, "%s",
                                  starts[rnd(sizeof starts / sizeof *starts)]);
    n = rnd(6);
    for (j = 0; j < n; j++) {
      /* Mostly the GCS's own shape, now and then a near miss. */
      unsigned k = rnd(100) < 70 ? 0 : rnd(sizeof items / sizeof *items);
      snprintf(num, sizeof num, "%s",
               numbers[rnd(100) < 70 ? rnd(3)
                                     : rnd(sizeof numbers / sizeof *numbers)]);
      if (j > 0) len += (size_t)snprintf(text + len, sizeof text - len, ",");
      len += (size_t)snprintf(text + len, sizeof text - len, items[k], num);
    }
    len += (size_t)snprintf(text + len, sizeof text - len, "%s",
                            ends[rnd(100) < 80 ? 0 : rnd(9)]);
    /* Now and then cut short, anywhere. */
    if (rnd(10) == 0) text[rnd((unsigned)len)] = '\0';
    if (text[0] == '\0') continue;
    if (both(&fast_d, &slow_d, text) == 0)
      accepted++;
    else
      refused++;
  }
  /* Both kinds were exercised, in numbers. */
  fprintf(stderr, "  %u accepted, %u refused\n", accepted, refused);
  CHECK(accepted > 5000);
  CHECK(refused > 2000);
  teardown();
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(gcs_shape_values),
      TEST_ENTRY(random_against_general),
  };
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
