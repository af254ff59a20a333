/* The service linked when libhcsbshim.la holds no Task service
 * (src/shim/Makefile.inc: this file's archive comes after it, so the
 * linker takes this one only then): the wire and the life cycle work,
 * every Task method but two answers UNIMPLEMENTED.
 *   Connect   the shim's pid and version (no task)
 *   Shutdown  ends the shim, as containerd expects */
#include <unistd.h>

#include <hcsbridge/common.h>

#include "shim.pb-c.h"
#include "shim/log.h"
#include "shim/shim.h"

static void on_connect(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                       void *data) {
  Containerd__Task__V2__ConnectResponse resp =
      CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;

  (void)req;
  (void)data;
  resp.shim_pid = (uint32_t)getpid();
  resp.version = (char *)hcsb_version_string();
  hcsb__shim_reply_ok(call, &resp.base);
}

static void on_shutdown(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                        void *data) {
  hcsb__shim_t *shim = data;

  (void)req;
  hcsb__shim_reply_ok(call, NULL);
  hcsb__shim_exit(shim, 0);
}

static const hcsb__shim_method_t methods[] = {
    {"containerd.task.v2.Task", "Connect",
     &containerd__task__v2__connect_request__descriptor, on_connect},
    {"containerd.task.v2.Task", "Shutdown",
     &containerd__task__v2__shutdown_request__descriptor, on_shutdown},
};

int hcsb__shim_service_start(hcsb__shim_t *shim) {
  SHIM_WARN("built without the task service: only Connect and Shutdown");
  return hcsb__shim_server_add(shim->server, methods,
                               sizeof(methods) / sizeof(methods[0]), shim);
}
