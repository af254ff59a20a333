/* containerd-shim-hcsb-v1 — the bundle's cleanup record.
 *
 * A shim can be SIGKILLed at any moment; containerd then runs
 * `containerd-shim-hcsb-v1 ... delete` in the bundle, and that command
 * must undo what the dead shim left: its own process, its VM's processes,
 * host mounts, files, its socket.  So everything of that kind is written
 * down in the bundle, in the file `hcsb-state`, before it exists (or right
 * after, for a process), and struck off when it is released normally.
 *
 * Format (text, one entry per line, rewritten whole through a temporary
 * file and rename(2) at every change, so a reader never sees half of it):
 *   # hcsbridge shim state 1
 *   shim PID START             the shim daemon itself (written by `start`)
 *   socket PATH                its listening socket (written by `start`)
 *   pid PID START LABEL        a host process to SIGKILL (QEMU,
 *                              hcsb-vsockd, ...); LABEL is for logs
 *   mount PATH                 a host mount point to detach (umount2
 *                              MNT_DETACH)
 *   file PATH                  a file or socket to unlink
 *   tree PATH                  a directory to remove with its contents;
 *                              never follows a symlink or crosses a mount
 *   task-pid PID               the pid containerd knows the task by;
 *                              `delete` reports it
 * PATH is absolute and runs to the end of the line (no newline in it).
 * START is the process's start time (field 22 of /proc/PID/stat): `delete`
 * signals PID only while that still matches, so a reused PID is left
 * alone.  Unknown kinds are skipped with a warning (newer writers).
 *
 * What `delete` does with it, in this order: SIGTERM to `shim` and up to
 * 1 s for it to go, then SIGKILL; SIGKILL to every `pid` and up to 1 s for
 * them to go (containerd allows `delete` 5 s in all); detach every
 * `mount` (last recorded first); unlink every `file` and `socket`; remove
 * every `tree`; remove hcsb-state (kept when something could not be
 * undone, for the next try).
 *
 * Record in a bundle only what belongs to that bundle's task: in a pod the
 * VM belongs to the sandbox's bundle, not to its containers' (whose
 * `delete` runs while the pod's shim goes on).
 *
 * Not thread-safe; one writer (the shim daemon, or `start` before it). */
#ifndef HCSB_SHIM_STATE_H
#define HCSB_SHIM_STATE_H

#include <stddef.h>
#include <sys/types.h>

#define HCSB__SHIM_STATE_FILE "hcsb-state"

typedef struct hcsb__shim_state_s hcsb__shim_state_t;

/* Opens the record of the bundle directory `bundle` (absolute), loading
 * the entries already there (an absent file is an empty record).
 * 0, -EINVAL, -ENOMEM, or the negative errno of reading it. */
int hcsb__shim_state_open(const char *bundle, hcsb__shim_state_t **out);
/* Frees the in-memory record; the file stays. */
void hcsb__shim_state_close(hcsb__shim_state_t *st);

/* Each adds or strikes off one entry and rewrites the file before it
 * returns.  0, -EINVAL (a relative path, a newline in it, pid <= 0),
 * -ESRCH (add_pid: no such process), -ENOMEM, or the negative errno of
 * writing.  Removing an entry that is not there is 0. */
int hcsb__shim_state_add_pid(hcsb__shim_state_t *st, pid_t pid,
                             const char *label);
int hcsb__shim_state_remove_pid(hcsb__shim_state_t *st, pid_t pid);
/* kind: "mount", "file", "tree" or "socket". */
int hcsb__shim_state_add_path(hcsb__shim_state_t *st, const char *kind,
                              const char *path);
int hcsb__shim_state_remove_path(hcsb__shim_state_t *st, const char *kind,
                                 const char *path);
int hcsb__shim_state_set_task_pid(hcsb__shim_state_t *st, pid_t pid);
/* The shim daemon's own entry (`start` writes it). */
int hcsb__shim_state_set_shim(hcsb__shim_state_t *st, pid_t pid);

/* The task pid recorded, or 0. */
pid_t hcsb__shim_state_task_pid(const hcsb__shim_state_t *st);

/* `delete`'s cleanup of `bundle`, as described above.  Failures to undo
 * one entry are reported through hcsb__shim_log (warn) and the rest is
 * still done.  Returns 0 when every entry was undone (or was gone
 * already), else the number of entries that could not be; *task_pid gets
 * the recorded task pid (0 when none). */
int hcsb__shim_state_cleanup(const char *bundle, pid_t *task_pid);

/* The start time of `pid` (field 22 of /proc/PID/stat), or 0 when there is
 * no such process or the file cannot be read. */
unsigned long long hcsb__shim_proc_start_time(pid_t pid);

#endif /* HCSB_SHIM_STATE_H */
