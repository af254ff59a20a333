/* Helpers shared by the API tests (test-api*.c) and the VM tests that use
 * the same records (test-vm*.c, test-uvm-vm.c): connections to the guest
 * emulator, a loop runner with a deadline, and a process runner that
 * collects stdio and the exit. */
#ifndef HCSB_TEST_API_UTIL_H
#define HCSB_TEST_API_UTIL_H

#include <sys/types.h>

#include <hcsbridge/conn.h>

#include "runner.h"

/* Runs `loop` until *flag is non-zero; fails the test after `ms`. */
void api_run_until_at(uv_loop_t *loop, const int *flag, unsigned ms,
                      const char *file, int line);
#define api_run_until(loop, flag, ms) \
  api_run_until_at((loop), (flag), (ms), __FILE__, __LINE__)
#define RUN_UNTIL(loop, flag) api_run_until((loop), &(flag), 10000)

/* Library log lines of level <= WARN fail nothing but are printed. */
void api_log(void *data, hcsb_log_level_t level, const char *aid,
             const char *msg);

typedef struct api_guest_s {
  uv_loop_t *loop;
  hcsb_conn_t *conn;
  pid_t pid; /* the emulator, when the test started it (unix transport) */
  char dir[256];
  int lost;
  int lost_status;
} api_guest_t;

/* Opens a connection to hcsb-guest spawned over its stdin/stdout. */
void api_open_spawn(api_guest_t *g, uv_loop_t *loop, const char *extra_args);
/* Opens a connection over a Unix socket the test listens on; the emulator
 * is started by the test with --connect (g->pid). */
void api_open_unix(api_guest_t *g, uv_loop_t *loop, const char *extra_args);
/* Opens a connection to any address (e.g. a VM's hvsock+fc://PATH); the
 * guest is started by someone else.  `timeout_ms` bounds the open and each
 * stdio accept. */
void api_open_address(api_guest_t *g, uv_loop_t *loop, const char *address,
                      unsigned timeout_ms);
/* Closes the connection, runs the loop dry and checks nothing is left. */
void api_close(api_guest_t *g);
/* Runs the loop until nothing is active, then checks uv_loop_close. */
void api_drain(uv_loop_t *loop);

/* A process run to completion. */
typedef struct api_proc_s {
  hcsb_process_t *p;
  int created, create_status;
  uint32_t create_hresult;
  char *out, *err;
  size_t nout, nerr;
  int out_eof, err_eof;
  int waited, wait_status;
  uint32_t exit_code;
  int closed;
} api_proc_t;

void api_proc_free(api_proc_t *r);
/* hcsb_process_read_start callback appending to an api_proc_t. */
void api_proc_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                   ssize_t nread);
void api_proc_created(void *data, hcsb_process_t *p, int status,
                      const hcsb_guest_error_t *gerr);
void api_proc_waited(void *data, hcsb_process_t *p, int status,
                     uint32_t exit_code);
void api_proc_closed(void *data);

/* Fills `cfg` (zeroed first) for argv (NULL-terminated, or NULL for a
 * container's init) with the pipes in `pipes` ("i", "o", "e" letters) and
 * a pty when `tty`.  argv must outlive the create call. */
void api_proc_config(hcsb_process_config_t *cfg, const char *const *argv,
                     const char *pipes, int tty);
/* Creates a UVM process running argv (NULL-terminated) with the pipes in
 * `pipes` ("i", "o", "e" letters), waits for its create callback. */
void api_uvm_start(api_guest_t *g, api_proc_t *r, const char *const *argv,
                   const char *pipes);
/* Creates a process in container `c` (init when argv is NULL) with the
 * pipes in `pipes` and a pty when `tty`; waits for its create callback,
 * which must succeed. */
void api_ctr_start(api_guest_t *g, hcsb_container_t *c, api_proc_t *r,
                   const char *const *argv, const char *pipes, int tty);
/* Writes `input` (if any), half-closes stdin, reads out/err to EOF, waits
 * for the exit and closes the process. */
void api_proc_finish(api_guest_t *g, api_proc_t *r, const char *input);

/* A container's callbacks recorded, for the tests that drive containers
 * (the emulator's and the VM groups'): one record and three callbacks
 * instead of a copy in every test file.  The create callback does not
 * store its handle (hcsb_conn_create_container sets it through `out`). */
typedef struct api_ctr_s {
  hcsb_container_t *c;
  int created, create_status;
  uint32_t hresult;  /* of the create's guest error, 0 without one */
  char message[512]; /* its message, "" without one */
  int waited, wait_status;
  hcsb_container_exit_t exit; /* zero when the wait reported none */
  char type_name[32];         /* exit.type_name copied ("" without one) */
  int closed;
} api_ctr_t;

/* hcsb_container_cb: counts calls in `created`. */
void api_ctr_created(void *data, hcsb_container_t *c, int status,
                     const hcsb_guest_error_t *gerr);
/* hcsb_container_wait callback: counts calls in `waited`. */
void api_ctr_waited(void *data, hcsb_container_t *c, int status,
                    const hcsb_container_exit_t *exit);
/* hcsb_container_close callback: counts calls in `closed`. */
void api_ctr_closed(void *data);

/* Simple completion record for hcsb_done_cb. */
typedef struct api_done_s {
  int done, status;
  uint32_t hresult;
  char message[256];
} api_done_t;
void api_done(void *data, int status, const hcsb_guest_error_t *gerr);

void api_closed_flag(void *data);

#endif
