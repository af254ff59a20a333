/* Replay of sessions recorded with a real Linux GCS (hcsshim v0.11.8).
 *
 * For every raw/<name>.gcs-to-host.bin the frames are decoded in order and
 * compared with the GCS->HOST blocks of <name>.txt: count, type, size,
 * sequence ID, Result, and the typed fields the text shows (ActivityId,
 * ExitCode, ProcessId, notification fields, capabilities).  The
 * host-to-gcs streams are checked at the framing level.  Each stream is
 * also fed one byte at a time and in random chunks, with identical
 * results.  The directory is enumerated: new recordings are picked up.
 *
 * One known wrinkle of the recordings: in frames carrying Go stack text
 * (ErrorRecords[].StackTrace, GuestStacks) the raw streams were normalised
 * after capture and are shorter than the Size printed in the .txt.  For
 * those frames only, the printed Size must be >= the raw one; every other
 * frame must match exactly. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "runner.h"

typedef struct {
  uint32_t type, size;
  uint64_t id;
  int has_result;
  uint32_t result;
  int has_exit, has_pid;
  uint32_t exit_code, pid;
  char activity[64];
  char container[128];
  char ntype[32];
} txt_frame_t;

typedef struct {
  txt_frame_t f[128];
  size_t n;
} txt_dir_t;

typedef struct {
  hcsb__hdr_t hdr;
  char *body;
  size_t len;
} bin_frame_t;

typedef struct {
  bin_frame_t f[128];
  size_t n;
} bin_t;

/* ------------------------------------------------------------------------ */
/* Reading the recordings */

static uint64_t hex_after(const char *line, const char *key) {
  const char *p = strstr(line, key);

  if (p == NULL) hcsb_test_fail(__FILE__, __LINE__, "no %s in: %s", key, line);
  return strtoull(p + strlen(key), NULL, 16);
}

/* Copies the string value of a top-level key line `      "Key": "v",`. */
static void str_value(const char *line, char *out, size_t cap) {
  const char *p = strchr(line, ':'), *q;

  p = strchr(p, '"');
  CHECK(p != NULL);
  q = strchr(p + 1, '"');
  CHECK(q != NULL && (size_t)(q - p - 1) < cap);
  memcpy(out, p + 1, (size_t)(q - p - 1));
  out[q - p - 1] = '\0';
}

/* Collects the blocks of one direction ("GCS->HOST" or "HOST->GCS"). */
static void parse_txt(const char *path, const char *dir, txt_dir_t *out) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  txt_frame_t *cur = NULL;

  if (f == NULL) hcsb_test_fail(__FILE__, __LINE__, "cannot open %s", path);
  memset(out, 0, sizeof(*out));
  while (getline(&line, &cap, f) > 0) {
    if (strncmp(line, "=== ", 4) == 0) {
      cur = NULL;
      if (strstr(line, dir) == NULL) continue;
      CHECK(out->n < 128);
      cur = &out->f[out->n++];
      cur->type = (uint32_t)hex_after(line, "Type=0x");
      cur->size = (uint32_t)hex_after(line, "Size=0x");
      cur->id = hex_after(line, "SequenceID=0x");
      continue;
    }
    if (cur == NULL) continue;
    /* Top-level body keys are indented by exactly six spaces; decoded
     * JSON-in-string fields further down are indented more. */
    if (strncmp(line, "    Result HRESULT = 0x", 23) == 0) {
      cur->has_result = 1;
      cur->result = (uint32_t)strtoul(line + 23, NULL, 16);
    } else if (strncmp(line, "      \"ExitCode\": ", 18) == 0) {
      cur->has_exit = 1;
      cur->exit_code = (uint32_t)strtoul(line + 18, NULL, 10);
    } else if (strncmp(line, "      \"ProcessId\": ", 19) == 0) {
      cur->has_pid = 1;
      cur->pid = (uint32_t)strtoul(line + 19, NULL, 10);
    } else if (strncmp(line, "      \"ActivityId\": ", 20) == 0) {
      str_value(line, cur->activity, sizeof(cur->activity));
    } else if (strncmp(line, "      \"ContainerId\": ", 21) == 0) {
      str_value(line, cur->container, sizeof(cur->container));
    } else if (strncmp(line, "      \"Type\": ", 14) == 0) {
      str_value(line, cur->ntype, sizeof(cur->ntype));
    }
  }
  free(line);
  fclose(f);
}

/* ------------------------------------------------------------------------ */
/* Decoding a stream in chunks */

static unsigned rng_state = 12345;

static unsigned rng(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (rng_state >> 8) & 0xFFFFFF;
}

/* chunk: 0 = whole stream, 1 = byte by byte, -1 = random 1..300 bytes. */
static void decode_stream(const uint8_t *data, size_t len, int chunk,
                          bin_t *out) {
  hcsb__decoder_t d;
  hcsb__frame_t f;
  size_t off = 0, end, used;
  hcsb__dec_event_t ev;

  memset(out, 0, sizeof(*out));
  hcsb__decoder_init(&d, 0);
  while (off < len) {
    size_t n = chunk == 0 ? len : chunk == 1 ? 1 : 1 + rng() % 300;
    end = len - off < n ? len : off + n;
    while (off < end) {
      ev = hcsb__decoder_feed(&d, data + off, end - off, &used, &f);
      off += used;
      if (ev == HCSB__DEC_NEED_MORE) continue;
      CHECK_EQ(ev, HCSB__DEC_FRAME);
      CHECK(out->n < 128);
      out->f[out->n].hdr = f.hdr;
      out->f[out->n].len = f.body_len;
      out->f[out->n].body = malloc(f.body_len + 1);
      CHECK(out->f[out->n].body != NULL);
      memcpy(out->f[out->n].body, f.body, f.body_len);
      out->n++;
    }
  }
  /* Recordings end on a frame boundary. */
  CHECK(hcsb__decoder_idle(&d));
  hcsb__decoder_free(&d);
}

static void free_bin(bin_t *b) {
  size_t i;

  for (i = 0; i < b->n; i++) free(b->f[i].body);
}

static void check_same_frames(const bin_t *a, const bin_t *b) {
  size_t i;

  CHECK_EQ(a->n, b->n);
  for (i = 0; i < a->n; i++) {
    CHECK_U64(a->f[i].hdr.type, b->f[i].hdr.type);
    CHECK_U64(a->f[i].hdr.size, b->f[i].hdr.size);
    CHECK_U64(a->f[i].hdr.id, b->f[i].hdr.id);
    CHECK_EQ(a->f[i].len, b->f[i].len);
    CHECK_MEM(a->f[i].body, b->f[i].body, a->f[i].len);
  }
}

static int has_stack_text(const bin_frame_t *f) {
  return memmem(f->body, f->len, "\"StackTrace\"", 12) != NULL ||
         memmem(f->body, f->len, "\"GuestStacks\"", 13) != NULL;
}

/* ------------------------------------------------------------------------ */
/* Checks */

typedef struct {
  size_t streams, frames, responses, notifications, waits, execs, negotiated;
  size_t stack_frames;
} tally_t;

static void check_caps(const hcsb_caps_t *c) {
  CHECK(c != NULL);
  CHECK_EQ(c->nschema_versions, 1);
  CHECK_U64(c->schema_versions[0].major, 2);
  CHECK_U64(c->schema_versions[0].minor, 1);
  CHECK_STR(c->runtime_os_type, "Linux");
  CHECK_EQ(c->send_host_create_message, 0);
  CHECK_EQ(c->send_host_start_message, 0);
  CHECK_EQ(c->hvsocket_config_on_startup, 0);
  CHECK_EQ(c->guest.namespace_add_request_supported, 1);
  CHECK_EQ(c->guest.signal_process_supported, 1);
  CHECK_EQ(c->guest.dump_stacks_supported, 1);
  CHECK_EQ(c->guest.delete_container_state_supported, 1);
  CHECK_EQ(c->guest.update_container_supported, 0);
}

/* Decodes again with the flat fast path off; the results must agree. */
static void check_json_c_path_agrees(const bin_frame_t *f,
                                     const hcsb_response_t *fast) {
  hcsb__decode_ctx_t slow;
  hcsb_response_t r;
  hcsb_guest_error_t g;
  int hg;

  CHECK_EQ(hcsb__decode_ctx_init(&slow), 0);
  slow.flat_disabled = 1;
  CHECK_EQ(hcsb__response_decode(&slow, f->hdr.type, f->hdr.id, f->body, f->len,
                                 &r, &g, &hg),
           0);
  CHECK_U64(r.result, fast->result);
  CHECK((r.activity_id == NULL) == (fast->activity_id == NULL));
  if (r.activity_id != NULL) CHECK_STR(r.activity_id, fast->activity_id);
  CHECK_U64(r.version, fast->version);
  CHECK_U64(r.process_id, fast->process_id);
  CHECK_EQ(r.has_exit_code, fast->has_exit_code);
  CHECK_U64(r.exit_code, fast->exit_code);
  CHECK_EQ(r.properties_len, fast->properties_len);
  CHECK_EQ(r.guest_stacks_len, fast->guest_stacks_len);
  hcsb__decode_ctx_free(&slow);
}

static void check_guest_frame(hcsb__decode_ctx_t *ctx, const bin_frame_t *f,
                              const txt_frame_t *t, tally_t *tally) {
  hcsb_response_t resp;
  hcsb_guest_error_t gerr;
  hcsb_notification_t n;
  int has_gerr, r;

  CHECK_U64(f->hdr.type, t->type);
  CHECK_U64(f->hdr.id, t->id);
  if (has_stack_text(f)) {
    CHECK(t->size >= f->hdr.size);
    tally->stack_frames++;
  } else {
    CHECK_U64(f->hdr.size, t->size);
  }
  CHECK(t->has_result);

  if (f->hdr.type == HCSB_MSG_NOTIFY_CONTAINER) {
    CHECK_U64(f->hdr.id, 0);
    r = hcsb__notification_decode(ctx, f->body, f->len, &n);
    CHECK_EQ(r, 0);
    CHECK_STR(n.container_id, t->container);
    CHECK_STR(n.type, t->ntype);
    CHECK(n.kind != HCSB_NOTIFY_UNKNOWN);
    CHECK_STR(n.operation, "None");
    CHECK_U64(n.result, t->result);
    CHECK_STR(n.activity_id, t->activity);
    tally->notifications++;
    hcsb__decode_release(ctx);
    return;
  }

  CHECK_U64(f->hdr.type & HCSB_MSG_TYPE_MASK, HCSB_MSG_TYPE_RESPONSE);
  r = hcsb__response_decode(ctx, f->hdr.type, f->hdr.id, f->body, f->len, &resp,
                            &gerr, &has_gerr);
  if (r != 0)
    hcsb_test_fail(__FILE__, __LINE__, "decode %08x id %llu: %d",
                   (unsigned)f->hdr.type, (unsigned long long)f->hdr.id, r);
  CHECK_U64(resp.result, t->result);
  CHECK_EQ(has_gerr, t->result != 0);
  check_json_c_path_agrees(f, &resp);
  if (t->activity[0] != '\0')
    CHECK_STR(resp.activity_id, t->activity);
  else
    CHECK(resp.activity_id == NULL);
  if (has_gerr) {
    CHECK_U64(gerr.hresult, t->result);
    CHECK(gerr.message[0] != '\0');
    CHECK(gerr.nrecords >= 1);
    CHECK_U64(gerr.records[0].result, t->result);
    CHECK_STR(gerr.records[0].module_name, "gcs");
  }
  switch (f->hdr.type) {
    case HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE:
      CHECK_EQ(resp.has_exit_code, t->has_exit);
      if (t->has_exit) {
        CHECK_U64(resp.exit_code, t->exit_code);
        tally->waits++;
      }
      break;
    case HCSB_MSG_EXECUTE_PROCESS_RESPONSE:
      if (t->has_pid) {
        CHECK(t->pid != 0);
        CHECK_U64(resp.process_id, t->pid);
        tally->execs++;
      } else {
        CHECK_U64(resp.process_id, 0);
      }
      break;
    case HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE:
      if (resp.result == 0) {
        CHECK_U64(resp.version, 4);
        check_caps(resp.caps);
        tally->negotiated++;
      }
      break;
    case HCSB_MSG_GET_PROPERTIES_RESPONSE:
      if (resp.result == 0) {
        CHECK(resp.properties != NULL);
        CHECK_EQ(hcsb__json_validate(resp.properties, resp.properties_len, 64),
                 json_type_object);
      }
      break;
    case HCSB_MSG_DUMP_STACKS_RESPONSE:
      if (resp.result == 0) {
        CHECK(resp.guest_stacks_len > 100);
        CHECK(strncmp(resp.guest_stacks, "goroutine ", 10) == 0);
      }
      break;
    default:
      break;
  }
  tally->responses++;
  hcsb__decode_release(ctx);
}

/* `name` is the recording's base name, e.g. "13_container". */
static void replay(const char *name, tally_t *tally) {
  char rel[512];
  txt_dir_t *txt = malloc(sizeof(*txt));
  bin_t *whole = malloc(sizeof(*whole)), *other = malloc(sizeof(*other));
  hcsb__decode_ctx_t ctx;
  uint8_t *data;
  size_t len, i;
  int mode;

  CHECK(txt && whole && other);
  CHECK_EQ(hcsb__decode_ctx_init(&ctx), 0);

  /* guest -> host */
  snprintf(rel, sizeof(rel), "transcripts/%s.txt", name);
  parse_txt(hcsb_test_data_path(rel), "GCS->HOST", txt);
  snprintf(rel, sizeof(rel), "transcripts/raw/%s.gcs-to-host.bin", name);
  data = hcsb_test_read_file(hcsb_test_data_path(rel), &len);
  decode_stream(data, len, 0, whole);
  if (whole->n != txt->n)
    hcsb_test_fail(__FILE__, __LINE__, "%s: %zu frames, text shows %zu", name,
                   whole->n, txt->n);
  CHECK(whole->n > 0);
  for (i = 0; i < whole->n; i++)
    check_guest_frame(&ctx, &whole->f[i], &txt->f[i], tally);
  for (mode = 1; mode >= -1; mode -= 2) {
    decode_stream(data, len, mode, other);
    check_same_frames(whole, other);
    free_bin(other);
  }
  tally->frames += whole->n;
  free_bin(whole);
  free(data);

  /* host -> guest: framing only */
  snprintf(rel, sizeof(rel), "transcripts/%s.txt", name);
  parse_txt(hcsb_test_data_path(rel), "HOST->GCS", txt);
  snprintf(rel, sizeof(rel), "transcripts/raw/%s.host-to-gcs.bin", name);
  data = hcsb_test_read_file(hcsb_test_data_path(rel), &len);
  decode_stream(data, len, 0, whole);
  CHECK_EQ(whole->n, txt->n);
  CHECK(whole->n > 0);
  for (i = 0; i < whole->n; i++) {
    CHECK_U64(whole->f[i].hdr.type, txt->f[i].type);
    CHECK_U64(whole->f[i].hdr.size, txt->f[i].size);
    CHECK_U64(whole->f[i].hdr.id, txt->f[i].id);
  }
  for (mode = 1; mode >= -1; mode -= 2) {
    decode_stream(data, len, mode, other);
    check_same_frames(whole, other);
    free_bin(other);
  }
  tally->frames += whole->n;
  free_bin(whole);
  free(data);

  hcsb__decode_ctx_free(&ctx);
  free(txt);
  free(whole);
  free(other);
  tally->streams++;
}

static void test_replay_all(void) {
  static const char suffix[] = ".gcs-to-host.bin";
  DIR *dir = opendir(hcsb_test_data_path("transcripts/raw"));
  struct dirent *e;
  tally_t t;

  CHECK(dir != NULL);
  memset(&t, 0, sizeof(t));
  while ((e = readdir(dir)) != NULL) {
    size_t n = strlen(e->d_name);
    char name[256];

    if (n <= sizeof(suffix) - 1 ||
        strcmp(e->d_name + n - (sizeof(suffix) - 1), suffix) != 0)
      continue;
    n -= sizeof(suffix) - 1;
    CHECK(n < sizeof(name));
    memcpy(name, e->d_name, n);
    name[n] = '\0';
    replay(name, &t);
  }
  closedir(dir);
  fprintf(stderr,
          "  %zu recordings, %zu frames: %zu responses, %zu notifications, "
          "%zu exit codes, %zu pids, %zu negotiations; %zu stack-text frames\n",
          t.streams, t.frames, t.responses, t.notifications, t.waits, t.execs,
          t.negotiated, t.stack_frames);
  /* The recordings shipped with the tree; a vanished one is a failure. */
  CHECK(t.streams >= 7);
  CHECK(t.notifications >= 2);
  CHECK(t.waits >= 5);
  CHECK(t.execs >= 5);
  CHECK(t.negotiated >= 7);
}

/* Spot checks on one recording, by value, independent of the text parser. */
static void test_container_recording(void) {
  uint8_t *data;
  size_t len, i, waits = 0;
  bin_t *b = malloc(sizeof(*b));
  hcsb__decode_ctx_t ctx;
  hcsb_notification_t n;
  hcsb_response_t resp;
  hcsb_guest_error_t gerr;
  int has_gerr, seen_note = 0;
  static const uint64_t wait_ids[] = {11, 13, 6};
  static const uint32_t wait_codes[] = {9, 143, 143};

  CHECK(b != NULL);
  CHECK_EQ(hcsb__decode_ctx_init(&ctx), 0);
  data = hcsb_test_read_file(
      hcsb_test_data_path("transcripts/raw/13_container.gcs-to-host.bin"),
      &len);
  decode_stream(data, len, 0, b);
  CHECK_EQ(b->n, 24);
  for (i = 0; i < b->n; i++) {
    const bin_frame_t *f = &b->f[i];
    if (f->hdr.type == HCSB_MSG_NOTIFY_CONTAINER) {
      CHECK_EQ(hcsb__notification_decode(&ctx, f->body, f->len, &n), 0);
      CHECK_STR(n.container_id, "gcspeer-c1");
      CHECK_EQ(n.kind, HCSB_NOTIFY_GRACEFUL_EXIT);
      CHECK_STR(n.activity_id, "11506794-5aca-4abc-a491-3e54ad6f154a");
      /* Only after the wait on init (ID 6) was answered. */
      CHECK_EQ(waits, 3);
      seen_note = 1;
    } else {
      CHECK_EQ(hcsb__response_decode(&ctx, f->hdr.type, f->hdr.id, f->body,
                                     f->len, &resp, &gerr, &has_gerr),
               0);
      if (f->hdr.type == HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE) {
        CHECK(waits < 3);
        CHECK_U64(f->hdr.id, wait_ids[waits]);
        CHECK_U64(resp.exit_code, wait_codes[waits]);
        waits++;
      }
      if (f->hdr.id == 5) CHECK_U64(resp.process_id, 44);
      if (f->hdr.id == 4) CHECK_U64(gerr.hresult, 0xC037010Fu);
    }
    hcsb__decode_release(&ctx);
  }
  CHECK(seen_note);
  free_bin(b);
  free(b);
  free(data);
  hcsb__decode_ctx_free(&ctx);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(replay_all),
    TEST_ENTRY(container_recording),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
