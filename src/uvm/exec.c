/* hcsb-uvm-exec PARENT-PID PROGRAM [ARG]...
 *
 * Runs PROGRAM so that it dies with the process that started it: the
 * kernel's parent-death signal (SIGKILL) survives execve, and
 * uv_spawn() offers no hook to set it in the child, so the library starts
 * QEMU and hcsb-vsockd through this.  PARENT-PID is the starter's PID: if
 * it is no longer our parent by the time the signal is armed, the starter
 * died in between and PROGRAM is not run.
 *
 * Linux ties the signal to the thread that forked us: a library user must
 * keep the thread that runs the VM's loop alive as long as the VM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char *end;
  long parent;

  if (argc < 3) {
    fprintf(stderr, "usage: hcsb-uvm-exec PARENT-PID PROGRAM [ARG]...\n");
    return 127;
  }
  errno = 0;
  parent = strtol(argv[1], &end, 10);
  if (errno != 0 || *end != '\0' || parent <= 1) {
    fprintf(stderr, "hcsb-uvm-exec: not a parent PID: '%s'\n", argv[1]);
    return 127;
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    fprintf(stderr, "hcsb-uvm-exec: prctl(PR_SET_PDEATHSIG): %s\n",
            strerror(errno));
    return 127;
  }
  if ((long)getppid() != parent) return 127; /* already orphaned */
  execvp(argv[2], argv + 2);
  fprintf(stderr, "hcsb-uvm-exec: cannot run %s: %s\n", argv[2],
          strerror(errno));
  return 127;
}
