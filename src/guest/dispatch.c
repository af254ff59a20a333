/* Request routing as the GCS's bridge mux does it: ActivityId extracted
 * leniently first, then the negotiation gate and the v4 handler table;
 * everything else is E_NOTIMPL answered with the derived response type.
 * Also the handlers too small for a file of their own. */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

/* What the v0.11.8 GCS answers to NegotiateProtocol, byte for byte: the
 * three boolean top-level capabilities are false and omitempty. */
static const char capabilities_json[] =
    "{\"SupportedSchemaVersions\":[{\"Major\":2,\"Minor\":1}],"
    "\"RuntimeOsType\":\"Linux\","
    "\"GuestDefinedCapabilities\":{\"NamespaceAddRequestSupported\":true,"
    "\"SignalProcessSupported\":true,\"DumpStacksSupported\":true,"
    "\"DeleteContainerStateSupported\":true}}";

const char *hcsb__gmsg_name(uint32_t type, char buf[HCSB__GMSG_NAME_MAX]) {
  uint32_t kind = type & HCSB_MSG_TYPE_MASK;
  uint32_t base = (type & ~HCSB_MSG_TYPE_MASK) | HCSB_MSG_TYPE_REQUEST;

  /* Go's MsgType.String() in the v0.11.8 GCS names ComputeSystem requests
   * up to DeleteContainerState and responses up to DumpStacks, in its own
   * words around the library's names; anything else is a number. */
  if (type == 0) return "None";
  if (type == HCSB_MSG_NOTIFY_CONTAINER) return "ComputeSystemNotificationV1";
  if ((type & HCSB_MSG_CATEGORY_MASK) == HCSB_MSG_CATEGORY_COMPUTE_SYSTEM &&
      (type & HCSB_MSG_ID_MASK) != 0 &&
      ((kind == HCSB_MSG_TYPE_REQUEST &&
        type <= HCSB_MSG_DELETE_CONTAINER_STATE) ||
       (kind == HCSB_MSG_TYPE_RESPONSE &&
        type <= HCSB_MSG_DUMP_STACKS_RESPONSE)) &&
      hcsb_msg_name(base) != NULL) {
    snprintf(buf, HCSB__GMSG_NAME_MAX, "ComputeSystem%s%sV1",
             kind == HCSB_MSG_TYPE_RESPONSE ? "Response" : "",
             hcsb_msg_name(base));
    return buf;
  }
  snprintf(buf, HCSB__GMSG_NAME_MAX, "%" PRIu32, type);
  return buf;
}

static void not_implemented(hcsb__greq_t *r) {
  char buf[HCSB__GMSG_NAME_MAX];

  hcsb__greply_errf(r->g, &r->call, HCSB_E_NOTIMPL,
                    "HRESULT 0x80004001: bridge: function not supported, "
                    "header type: %s",
                    hcsb__gmsg_name(r->call.type, buf));
}

/* Decodes a body that is only the message base (Start, Shutdown). */
static int decode_base(hcsb__greq_t *r) {
  hcsb__gdec_t d;
  return hcsb__gdec_begin(r, &d, "MessageBase");
}

static void negotiate(hcsb__greq_t *r) {
  hcsb__gdec_t d;
  uint32_t min = 0, max = 0;
  hcsb__gjw_t w;

  if (hcsb__gdec_begin(r, &d, "NegotiateProtocol") < 0) return;
  if (hcsb__gdec_u32(&d, r->root, "MinimumVersion", &min) < 0 ||
      hcsb__gdec_u32(&d, r->root, "MaximumVersion", &max) < 0) {
    hcsb__gdec_fail(r, d.err);
    return;
  }
  if (max < 4 || min > 4) {
    hcsb__greply_err(r->g, &r->call,
                     HCSB_E_VMCOMPUTE_UNSUPPORTED_PROTOCOL_VERSION, NULL);
    return;
  }
  r->g->negotiated = 1;
  hcsb__greply_begin(&w, 0, r->call.aid);
  hcsb__gjw_u64(&w, "Version", 4);
  hcsb__gjw_raw(&w, "Capabilities", capabilities_json);
  hcsb__greply_finish(r->g, &r->call, &w);
}

static void start(hcsb__greq_t *r) {
  /* Linux starts a container with its first ExecuteProcess; Start only
   * decodes and succeeds, for any ID. */
  if (decode_base(r) < 0) return;
  hcsb__greply_ok(r->g, &r->call);
}

static void dump_stacks(hcsb__greq_t *r) {
  size_t len = 0;
  char parent[1200], *text;
  hcsb__gjw_t w;

  hcsb__gspan_parent(r->root, parent, sizeof parent);
  text = hcsb__gdump(r->g, parent, &len);

  /* The GCS never decodes this body: garbage gets an answer too. */
  if (text == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  hcsb__greply_begin(&w, 0, r->call.aid);
  hcsb__gjw_str(&w, "GuestStacks", text, len);
  hcsb__greply_finish(r->g, &r->call, &w);
  free(text);
}

static void shutdown_req(hcsb__greq_t *r, int sig) {
  if (decode_base(r) < 0) return;
  if (strcmp(r->cid, HCSB__G_NULL_ID) == 0) {
    /* The real guest powers the VM off without answering; the host treats
     * the EOF that follows as success. */
    hcsb__glog(r->g, 1, "%s on the UVM: stopping everything",
               sig == SIGTERM ? "ShutdownGraceful" : "ShutdownForced");
    hcsb__guest_teardown(r->g, 0, "shutdown requested");
    return;
  }
  hcsb__gh_shutdown(r, sig);
}

static int allowed(const hcsb__guest_t *g, uint32_t type) {
  switch (type) {
    case HCSB_MSG_NEGOTIATE_PROTOCOL:
      /* Once per connection; a second one is "not supported". */
      return !g->negotiated;
    case HCSB_MSG_CREATE:
    case HCSB_MSG_START:
    case HCSB_MSG_SHUTDOWN_GRACEFUL:
    case HCSB_MSG_SHUTDOWN_FORCED:
    case HCSB_MSG_EXECUTE_PROCESS:
    case HCSB_MSG_WAIT_FOR_PROCESS:
    case HCSB_MSG_SIGNAL_PROCESS:
    case HCSB_MSG_RESIZE_CONSOLE:
    case HCSB_MSG_GET_PROPERTIES:
    case HCSB_MSG_MODIFY_SETTINGS:
    case HCSB_MSG_DUMP_STACKS:
    case HCSB_MSG_DELETE_CONTAINER_STATE:
      return g->negotiated;
    default:
      return 0;
  }
}

/* --fail-request: counts the session's requests, 1 when this one fails. */
static int injected_failure(hcsb__guest_t *g) {
  unsigned i;

  g->nsession++;
  for (i = 0; i < g->nfail_at; i++)
    if (g->fail_at[i] == g->nsession) return 1;
  return 0;
}

void hcsb__gdispatch(hcsb__guest_t *g, const hcsb__frame_t *f) {
  hcsb__greq_t r;
  json_object *v;

  memset(&r, 0, sizeof r);
  r.g = g;
  r.call.type = f->hdr.type;
  r.call.id = f->hdr.id;
  r.body = (const char *)f->body;
  r.len = f->body_len;
  r.cid = "";
  g->nrequests++;

  /* The GCS first pulls ContainerId/ActivityId out leniently, errors
   * ignored, so even requests it rejects echo the ActivityId. */
  if (hcsb__json_validate(r.body, r.len, HCSB__JSON_MAX_DEPTH) ==
      json_type_null) {
    r.parsed = 1; /* Go decodes null into the zero struct */
  } else if (hcsb__json_parse(r.body, r.len, &r.root) == 0) {
    r.parsed = 1;
    if (json_object_is_type(r.root, json_type_object)) {
      v = hcsb__json_get(r.root, "ActivityId");
      if (json_object_is_type(v, json_type_string))
        r.call.aid = (char *)json_object_get_string(v);
      v = hcsb__json_get(r.root, "ContainerId");
      if (json_object_is_type(v, json_type_string))
        r.cid = json_object_get_string(v);
    }
  }

  hcsb__glog(g, 1, "request %s id %" PRIu64 " (%zu bytes)",
             hcsb__gmsg_name(r.call.type, (char[HCSB__GMSG_NAME_MAX]){0}),
             r.call.id, r.len);

  if (!allowed(g, r.call.type)) {
    not_implemented(&r);
  } else if (g->negotiated && injected_failure(g)) {
    hcsb__greply_errf(g, &r.call, HCSB_E_FAIL,
                      "injected failure of request %" PRIu64
                      " (--fail-request)",
                      g->nsession);
  } else {
    switch (r.call.type) {
      case HCSB_MSG_NEGOTIATE_PROTOCOL:
        negotiate(&r);
        break;
      case HCSB_MSG_CREATE:
        hcsb__gh_create(&r);
        break;
      case HCSB_MSG_START:
        start(&r);
        break;
      case HCSB_MSG_SHUTDOWN_GRACEFUL:
        shutdown_req(&r, SIGTERM);
        break;
      case HCSB_MSG_SHUTDOWN_FORCED:
        shutdown_req(&r, SIGKILL);
        break;
      case HCSB_MSG_EXECUTE_PROCESS:
        hcsb__gh_execute(&r);
        break;
      case HCSB_MSG_WAIT_FOR_PROCESS:
        hcsb__gh_wait(&r);
        break;
      case HCSB_MSG_SIGNAL_PROCESS:
        hcsb__gh_signal(&r);
        break;
      case HCSB_MSG_RESIZE_CONSOLE:
        hcsb__gh_resize(&r);
        break;
      case HCSB_MSG_GET_PROPERTIES:
        hcsb__gh_get_properties(&r);
        break;
      case HCSB_MSG_MODIFY_SETTINGS:
        hcsb__gh_modify(&r);
        break;
      case HCSB_MSG_DUMP_STACKS:
        dump_stacks(&r);
        break;
      case HCSB_MSG_DELETE_CONTAINER_STATE:
        hcsb__gh_delete(&r);
        break;
      default:
        not_implemented(&r);
        break;
    }
  }
  if (r.root != NULL) json_object_put(r.root);
}

void hcsb__gdispatch_oversize(hcsb__guest_t *g, const hcsb__hdr_t *h) {
  hcsb__gcall_t call = {h->type, h->id, NULL};

  /* Better than the GCS (which allocates whatever Size says): the one call
   * fails, the connection lives on, the body is skipped unread. */
  hcsb__glog(g, 0,
             "request id %" PRIu64 " of %" PRIu32
             " bytes exceeds --max-frame %" PRIu32 "; answering E_FAIL",
             h->id, h->size, g->max_frame);
  hcsb__greply_errf(g, &call, HCSB_E_FAIL,
                    "message of %" PRIu32 " bytes exceeds the limit of %" PRIu32
                    " bytes",
                    h->size, g->max_frame);
}
