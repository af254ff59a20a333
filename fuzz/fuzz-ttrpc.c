/* Fuzz target: the shim's ttrpc server side without I/O (src/shim/
 * session.c over src/shim/ttrpc.c): frame reader, Request envelope, the
 * method's request unpacked with the allocation budget, dispatch, replies.
 *
 * Input: [chunk] [flags] [stream bytes...]
 *   chunk  feed the stream in pieces of 1 + chunk % 97 bytes (0: at once)
 *   flags  bit 0: at most 2 calls in flight; bit 1: end the held calls
 *          between pieces; bit 2: the server stops half way
 *
 * The method table has Task/Create (CreateTaskRequest, answered at once),
 * Task/State (StateRequest, held), Task/Kill (raw payload, answered with
 * an error), Task/Shutdown (dropped).  Checked: feed's verdicts (0, or an
 * error that sticks), every frame written is a well-formed Response frame,
 * a call exists exactly while it is held, the session frees itself exactly
 * once after detach and its last call. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "shim.pb-c.h"
#include "shim/log.h"
#include "shim/session.h"
#include "shim/ttrpc.h"

#define MAX_HELD 1024

static hcsb__shim_call_t *held[MAX_HELD];
static size_t nheld;
static int freed;

static void h_create(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                     void *data) {
  const Containerd__Task__V2__CreateTaskRequest *r = (const void *)req;
  Containerd__Task__V2__CreateTaskResponse resp =
      CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
  size_t i, sum = 0;

  FUZZ_CHECK(req != NULL &&
             req->descriptor ==
                 &containerd__task__v2__create_task_request__descriptor);
  /* Everything the handler may read is there. */
  sum += strlen(r->id) + strlen(r->bundle) + strlen(r->stdin);
  for (i = 0; i < r->n_rootfs; i++) {
    size_t j;
    FUZZ_CHECK(r->rootfs[i] != NULL);
    sum += strlen(r->rootfs[i]->type) + strlen(r->rootfs[i]->source);
    for (j = 0; j < r->rootfs[i]->n_options; j++)
      sum += strlen(r->rootfs[i]->options[j]);
  }
  resp.pid = (uint32_t)sum;
  hcsb__shim_reply_ok(call, &resp.base);
}

static void h_state(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                    void *data) {
  size_t len;

  FUZZ_CHECK(req != NULL);
  FUZZ_CHECK(hcsb__shim_call_gone(call) == 0);
  (void)hcsb__shim_call_payload(call, &len);
  (void)hcsb__shim_call_metadata(call, "containerd-namespace-ttrpc");
  if (nheld == MAX_HELD) {
    hcsb__shim_call_drop(call);
    return;
  }
  held[nheld++] = call;
}

static void h_kill(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                   void *data) {
  FUZZ_CHECK(req == NULL);
  hcsb__shim_reply_status(call, -ESRCH, NULL, "kill %s",
                          hcsb__shim_call_method(call));
}

static void h_shutdown(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                       void *data) {
  hcsb__shim_call_drop(call);
}

static const hcsb__shim_method_t methods[] = {
    {"containerd.task.v2.Task", "Create",
     &containerd__task__v2__create_task_request__descriptor, h_create},
    {"containerd.task.v2.Task", "State",
     &containerd__task__v2__state_request__descriptor, h_state},
    {"containerd.task.v2.Task", "Kill", NULL, h_kill},
    {"containerd.task.v2.Task", "Shutdown",
     &containerd__task__v2__shutdown_request__descriptor, h_shutdown},
};

static const hcsb__shim_method_t *lookup(void *ctx, const char *service,
                                         const char *method, void **data) {
  size_t i;

  for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
    if (strcmp(methods[i].service, service) == 0 &&
        strcmp(methods[i].method, method) == 0)
      return &methods[i];
  return NULL;
}

static void on_free(void *ctx) {
  freed++;
}

/* Takes the output and checks each frame. */
static void check_output(hcsb__ttrpc_session_t *s) {
  hcsb__link_t list;

  hcsb__list_init(&list);
  hcsb__ttrpc_session_take_output(s, &list);
  while (!hcsb__list_empty(&list)) {
    hcsb__ttrpc_out_t *o =
        HCSB__CONTAINER_OF(list.next, hcsb__ttrpc_out_t, link);
    hcsb__ttrpc_header_t h;
    hcsb__pb_budget_t b;
    Ttrpc__Response *resp;

    hcsb__list_remove(&o->link);
    FUZZ_CHECK(o->len >= HCSB__TTRPC_HEADER_LEN);
    hcsb__ttrpc_header_get(o->data, &h);
    FUZZ_CHECK(h.length == o->len - HCSB__TTRPC_HEADER_LEN);
    FUZZ_CHECK(h.length <= HCSB__TTRPC_MAX_PAYLOAD);
    FUZZ_CHECK(h.type == HCSB__TTRPC_TYPE_RESPONSE && h.flags == 0);
    hcsb__pb_budget_init(&b, 0);
    FUZZ_CHECK(hcsb__ttrpc_response_unpack(o->data + HCSB__TTRPC_HEADER_LEN,
                                           h.length, &b, &resp) == 0);
    FUZZ_CHECK(resp->status != NULL);
    FUZZ_CHECK(resp->status->code >= 0 && resp->status->code <= 16);
    if (resp->status->code != 0) FUZZ_CHECK(resp->payload.len == 0);
    protobuf_c_message_free_unpacked(&resp->base, &b.allocator);
    FUZZ_CHECK(b.used == 0);
    hcsb__ttrpc_out_free(o);
  }
  FUZZ_CHECK(hcsb__ttrpc_session_output_bytes(s) == 0);
}

static void end_held(void) {
  size_t i;

  for (i = 0; i < nheld; i++) {
    if (i % 2)
      hcsb__shim_reply_ok(held[i], NULL);
    else
      hcsb__shim_reply_error(held[i], 5, "gone %zu", i);
  }
  nheld = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hcsb__ttrpc_session_cfg_t cfg;
  hcsb__ttrpc_session_t *s;
  size_t at, piece;
  unsigned flags;
  int verdict = 0;

  if (size < 2) return 0;
  hcsb__shim_log_silence();
  piece = data[0] ? 1 + data[0] % 97u : size;
  flags = data[1];
  data += 2;
  size -= 2;
  nheld = 0;
  freed = 0;
  memset(&cfg, 0, sizeof(cfg));
  cfg.max_calls = (flags & 1) ? 2 : 0;
  cfg.lookup = lookup;
  cfg.on_free = on_free;
  FUZZ_CHECK(hcsb__ttrpc_session_new(&cfg, &s) == 0);

  for (at = 0; at < size; at += piece) {
    size_t n = size - at < piece ? size - at : piece;
    int r = hcsb__ttrpc_session_feed(s, data + at, n);

    FUZZ_CHECK(r == 0 || r == -EPROTO || r == -ENOMEM);
    /* An error sticks. */
    if (verdict != 0) FUZZ_CHECK(r == verdict);
    verdict = r;
    FUZZ_CHECK(hcsb__ttrpc_session_calls(s) == nheld);
    check_output(s);
    if (flags & 2) {
      end_held();
      check_output(s);
      FUZZ_CHECK(hcsb__ttrpc_session_calls(s) == 0);
    }
    if ((flags & 4) && at >= size / 2) hcsb__ttrpc_session_stop(s);
  }
  /* The client leaves with calls held: they end later, and the session
   * goes with the last of them. */
  hcsb__ttrpc_session_detach(s);
  FUZZ_CHECK(freed == (nheld == 0));
  end_held();
  FUZZ_CHECK(freed == 1);
  return 0;
}
