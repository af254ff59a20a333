/* containerd-shim-hcsb-v1 — the shim's log.
 *
 * The long-lived shim writes to the `log` FIFO in its bundle, which
 * containerd reads and copies to its own log; lines are in logrus' text
 * format, like every other shim's:
 *   time="2006-01-02T15:04:05.000000000Z" level=info msg="..." \
 *     id=ID namespace=NS
 * (one line; split here to fit).
 * The FIFO is opened read-write and non-blocking, so the shim never blocks
 * on it: while nobody reads, lines past the pipe's buffer are dropped (and
 * counted).  The `start` and `delete` commands log to stderr instead
 * (containerd shows a failed command's output), and only on failure.
 *
 * Levels are the library's (hcsb_log_level_t): error, warn, info, debug,
 * trace.  The threshold comes from the config's log_level; -debug raises
 * it to debug.  Safe to call before hcsb__shim_log_open (then: stderr). */
#ifndef HCSB_SHIM_LOG_H
#define HCSB_SHIM_LOG_H

#include <stdarg.h>

#include <hcsbridge/common.h>

/* Sends lines to `fd` (owned from here; -1 = stderr) with the fields
 * id=`id` namespace=`ns` (copied; either may be NULL). */
void hcsb__shim_log_open(int fd, const char *id, const char *ns);
/* Closes the fd given to hcsb__shim_log_open (back to stderr). */
void hcsb__shim_log_close(void);
void hcsb__shim_log_set_level(hcsb_log_level_t level);
/* No lines at all (fuzzing), until the next set_level. */
void hcsb__shim_log_silence(void);
hcsb_log_level_t hcsb__shim_log_level(void);
/* 1 when a line at `level` would be written. */
int hcsb__shim_log_enabled(hcsb_log_level_t level);
/* Lines not written because the FIFO was full. */
unsigned long hcsb__shim_log_dropped(void);

void hcsb__shim_log(hcsb_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hcsb__shim_vlog(hcsb_log_level_t level, const char *fmt, va_list ap);

/* An hcsb_log_cb for the library's connection/bridge logs (data unused):
 * the line goes to the shim's log with the activity id as a field. */
void hcsb__shim_lib_log(void *data, hcsb_log_level_t level,
                        const char *activity_id, const char *msg);

#define SHIM_ERROR(...) hcsb__shim_log(HCSB_LOG_ERROR, __VA_ARGS__)
#define SHIM_WARN(...) hcsb__shim_log(HCSB_LOG_WARN, __VA_ARGS__)
#define SHIM_INFO(...) hcsb__shim_log(HCSB_LOG_INFO, __VA_ARGS__)
#define SHIM_DEBUG(...) hcsb__shim_log(HCSB_LOG_DEBUG, __VA_ARGS__)

#endif /* HCSB_SHIM_LOG_H */
