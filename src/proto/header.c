/* The 16-byte frame header and the message identifier table. */
#include <stddef.h>

#include "proto/proto.h"

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

void hcsb__hdr_encode(uint8_t out[16], const hcsb__hdr_t *h) {
  put_le32(out, h->type);
  put_le32(out + 4, h->size);
  put_le32(out + 8, (uint32_t)h->id);
  put_le32(out + 12, (uint32_t)(h->id >> 32));
}

uint32_t hcsb_msg_response_type(uint32_t request_type) {
  return HCSB_MSG_TYPE_RESPONSE | (request_type & ~HCSB_MSG_TYPE_MASK);
}

/* Indexed by the message-ID field (bits 8..19) of ComputeSystem messages. */
static const char *const system_names[16][2] = {
    {NULL, NULL},
    {"Create", "CreateResponse"},
    {"Start", "StartResponse"},
    {"ShutdownGraceful", "ShutdownGracefulResponse"},
    {"ShutdownForced", "ShutdownForcedResponse"},
    {"ExecuteProcess", "ExecuteProcessResponse"},
    {"WaitForProcess", "WaitForProcessResponse"},
    {"SignalProcess", "SignalProcessResponse"},
    {"ResizeConsole", "ResizeConsoleResponse"},
    {"GetProperties", "GetPropertiesResponse"},
    {"ModifySettings", "ModifySettingsResponse"},
    {"NegotiateProtocol", "NegotiateProtocolResponse"},
    {"DumpStacks", "DumpStacksResponse"},
    {"DeleteContainerState", "DeleteContainerStateResponse"},
    {"UpdateContainer", "UpdateContainerResponse"},
    {"LifecycleNotification", "LifecycleNotificationResponse"},
};

const char *hcsb_msg_name(uint32_t type) {
  uint32_t kind = type & HCSB_MSG_TYPE_MASK;
  uint32_t n = (type & HCSB_MSG_ID_MASK) >> 8;
  int is_resp = kind == HCSB_MSG_TYPE_RESPONSE;

  if (type == HCSB_MSG_NOTIFY_CONTAINER) return "ContainerNotification";
  if (kind != HCSB_MSG_TYPE_REQUEST && !is_resp) return NULL;
  if ((type & HCSB_MSG_VERSION_MASK) != 1) return NULL;
  switch (type & HCSB_MSG_CATEGORY_MASK) {
    case HCSB_MSG_CATEGORY_COMPUTE_SYSTEM:
      if (n >= 16) return NULL;
      return system_names[n][is_resp];
    case HCSB_MSG_CATEGORY_COMPUTE_SERVICE:
      if (n != 1) return NULL;
      return is_resp ? "ModifyServiceSettingsResponse"
                     : "ModifyServiceSettings";
    default:
      return NULL;
  }
}

const char *hcsb__msg_name(uint32_t type) {
  const char *name = hcsb_msg_name(type);
  return name != NULL ? name : "unknown type";
}
