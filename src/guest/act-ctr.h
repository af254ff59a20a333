/* Shared by act-create.c and act-ctr.c (containers through runc): the
 * backend's part of a container and one runc command run for a request.
 * Private to those two files. */
#ifndef HCSB_GUEST_ACT_CTR_H
#define HCSB_GUEST_ACT_CTR_H

#include "guest/act.h"

#define HCSB__GA_GCS_ROOT "/run/gcs/c"

typedef struct hcsb__gactr_s {
  char *state;    /* /run/hcsb-guest/<id> */
  char *rootdir;  /* /run/gcs/c/<id>: hostname, hosts, resolv.conf */
  char *scratch;  /* ScratchDirPath, or NULL */
  unsigned files; /* HCSB__GSPEC_* written into rootdir */
  int made_bundle;
  int wrote_config;
  pid_t init_pid;
  uint64_t init_seq;          /* orphan exits after this may be the init's */
  hcsb__grelay_t *init_relay; /* until the init starts */
  int init_tty;
  char *init_argv0;
  int busy; /* a start or delete runs */
} hcsb__gactr_t;

/* One runc command on behalf of a request.  `c` is referenced (a
 * Create's is owned until it is inserted). */
typedef struct hcsb__garun_s {
  hcsb__guest_t *g;
  hcsb__gcall_t call;
  hcsb__gctr_t *c; /* referenced (Create: owned) */
  int kind;
  int sig;
  int socks[3];
  int console; /* listening console socket, or -1 */
  char console_path[108];
  hcsb__grelay_t *relay;
  int tty;
  uint16_t rows, cols;
  char *argv0;
  char *pid_file, *process_file, *log;
} hcsb__garun_t;

/* A Create in flight (hcsb__ga_creating finds it by ID). */
typedef struct hcsb__gacreate_s {
  TAILQ_ENTRY(hcsb__gacreate_s) link;
  hcsb__garun_t *op;
} hcsb__gacreate_t;

/* A new op for `call` on `c` (log: <state>/runc.log when c->act is set);
 * NULL on ENOMEM. */
hcsb__garun_t *hcsb__garun_new(hcsb__guest_t *g, const hcsb__gcall_t *call,
                               hcsb__gctr_t *c);
/* Closes what the op still holds (sockets, console socket, relay, pid and
 * process files) and frees it; op->c is not touched. */
void hcsb__garun_free(hcsb__garun_t *op);
/* A console socket under HCSB__GA_STATE_DIR (short: sun_path is 108). */
int hcsb__garun_console(hcsb__garun_t *op);
/* Runs runc for the op; `cb` gets the op.  0 or -errno (no callback). */
int hcsb__garun_start(hcsb__garun_t *op, const hcsb__grunc_cmd_t *cmd,
                      const int fds[3], hcsb__gjob_cb cb);
/* Why runc failed: its log's last error, else its output, else its exit. */
void hcsb__garun_reason(const char *log, const char *out, int status, char *buf,
                        size_t size);
/* An ID runc may still know after a failure: runc delete --force at the
 * session's end. */
void hcsb__ga_stale(hcsb__guest_t *g, const char *id);
/* Removes the hostname/hosts/resolv.conf and config.json written here. */
void hcsb__ga_remove_files(hcsb__gctr_t *c);

#endif /* HCSB_GUEST_ACT_CTR_H */
