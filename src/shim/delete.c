/* containerd's `delete` (cmd.h): undo what a dead shim left in and around
 * the bundle, then print a DeleteResponse.
 *
 * containerd runs it after every shim that goes away (a clean Shutdown
 * too) and after a failed start, with a 5 s deadline, and parses all of
 * stdout as the response; stderr is logged as cleanup warnings.  So it
 * succeeds whenever the bundle's record could be read, whether there was
 * anything left or not, and reports what it could not undo on stderr. */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>

#include "shim.pb-c.h"
#include "shim/cmd.h"
#include "shim/log.h"
#include "shim/state.h"

int hcsb__shim_cmd_delete(const hcsb__shim_args_t *a) {
  Containerd__Task__V2__DeleteResponse resp =
      CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  char bundle[PATH_MAX], rootfs[PATH_MAX + 8];
  uint8_t buf[64];
  struct timespec now;
  pid_t task_pid;
  size_t n;
  int r;

  if (a->ns[0] == '\0') {
    fprintf(stderr,
            "containerd-shim-hcsb-v1: shim namespace cannot be empty\n");
    return 1;
  }
  r = hcsb__shim_bundle(a, bundle, sizeof(bundle));
  if (r < 0) {
    fprintf(stderr, "containerd-shim-hcsb-v1: the bundle directory: %s\n",
            strerror(-r));
    return 1;
  }
  hcsb__shim_log_open(-1, a->id, a->ns);
  hcsb__shim_log_set_level(a->debug ? HCSB_LOG_DEBUG : HCSB_LOG_WARN);
  r = hcsb__shim_state_cleanup(bundle, &task_pid);
  if (r > 0) SHIM_WARN("cleanup of %s: %d entries left", bundle, r);
  /* A rootfs mounted in the bundle (what runc's shim leaves) goes too. */
  snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
  if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    SHIM_WARN("umount %s: %s", rootfs, strerror(errno));

  /* As containerd's own shims report a task they could not wait for:
   * killed (128 + SIGKILL), now. */
  clock_gettime(CLOCK_REALTIME, &now);
  ts.seconds = now.tv_sec;
  ts.nanos = (int32_t)now.tv_nsec;
  resp.pid = task_pid > 0 ? (uint32_t)task_pid : 0;
  resp.exit_status = 128 + 9;
  resp.exited_at = &ts;
  n = protobuf_c_message_pack(&resp.base, buf);
  if (fwrite(buf, 1, n, stdout) != n || fflush(stdout) != 0) {
    fprintf(stderr, "containerd-shim-hcsb-v1: writing the response: %s\n",
            strerror(errno));
    return 1;
  }
  return 0;
}
