/* Transports: a bridge over every way of getting a stream (unix listen and
 * connect, fd, spawn, hybrid vsock both ways), the stdio listener API, and
 * AF_VSOCK listening.  SAFETY: AF_VSOCK sockets are only created, bound
 * and listened on here; nothing ever connects one. */
#include <hcsbridge/bridge.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bridge/transport.h"
#include "runner.h"
#include "test-bridge-peer.h"

#define START_RESP HCSB_MSG_START_RESPONSE

static char path_a[256], path_b[300];

static void tmp_path(char *out, const char *name) {
  snprintf(out, 256, "%s/%s", hcsb_test_tmpdir(), name);
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void fill_sun(struct sockaddr_un *sun, const char *path) {
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  CHECK(strlen(path) < sizeof sun->sun_path);
  memcpy(sun->sun_path, path, strlen(path) + 1);
}

static int unix_dial(const char *path) {
  struct sockaddr_un sun;
  fill_sun(&sun, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

static int unix_listen(const char *path) {
  struct sockaddr_un sun;
  fill_sun(&sun, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  CHECK_EQ(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
  CHECK_EQ(listen(fd, 4), 0);
  return fd;
}

/* The guest side of a session: negotiate, answer one Start, wait for EOF. */
static void serve_one_call(peer_t *p) {
  peer_negotiate(p);
  uint64_t id = peer_expect(p, HCSB_MSG_START);
  peer_send(p, START_RESP, id, PEER_OK_BODY);
  CHECK_EQ(peer_drain(p), 0);
}

/* Runs one Start call on a ready bridge and checks it succeeds. */
static void one_call(fx_t *fx) {
  rec_t r;
  memset(&r, 0, sizeof r);
  hcsb_request_t q = req_start("c");
  CHECK_EQ(api_call(fx->b, &q, 0, rec_cb, &r, NULL), 0);
  fx_run_until(fx, &r.n, 1);
  CHECK_EQ(r.status, 0);
  CHECK_U64(r.id, 2);
}

/* ------------------------------------------------------------------------ */
/* unix:// and unix+connect:// */

static void script_dial_then_serve(peer_t *p) {
  p->fd = unix_dial(p->arg);
  CHECK(p->fd >= 0);
  serve_one_call(p);
}

static void test_unix_listen(void) {
  fx_t fx;
  char addr[300];
  tmp_path(path_a, "bridge.sock");
  snprintf(addr, sizeof addr, "unix://%s", path_a);
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  CHECK(exists(path_a)); /* bound when connect returns */
  CHECK_EQ(fx_connect(&fx, addr), -EALREADY);
  peer_start(&fx.peer, -1, script_dial_then_serve, path_a);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, 0);
  CHECK(!exists(path_a)); /* one connection per listen */
  const hcsb_addr_t *a = hcsb_bridge_address(fx.b);
  CHECK(a != NULL);
  CHECK_EQ(a->transport, HCSB_TRANSPORT_UNIX);
  CHECK_STR(a->stdio_dir,
            hcsb_test_tmpdir()); /* defaults to the socket's dir */
  one_call(&fx);
  fx_finish(&fx, 1);
}

static void script_accept_then_serve(peer_t *p) {
  int lfd = *(int *)p->arg;
  p->fd = accept(lfd, NULL, NULL);
  CHECK(p->fd >= 0);
  serve_one_call(p);
}

static void test_unix_connect(void) {
  fx_t fx;
  char addr[300];
  tmp_path(path_a, "guest.sock");
  int lfd = unix_listen(path_a);
  snprintf(addr, sizeof addr, "unix+connect://%s?stdio=/somewhere/else",
           path_a);
  fx_setup(&fx, NULL);
  peer_start(&fx.peer, -1, script_accept_then_serve, &lfd);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, 0);
  CHECK_STR(hcsb_bridge_address(fx.b)->stdio_dir, "/somewhere/else");
  one_call(&fx);
  fx_finish(&fx, 1);
  close(lfd);
}

static void test_unix_connect_errors(void) {
  fx_t fx;
  rec_t r;
  char addr[300];
  memset(&r, 0, sizeof r);
  tmp_path(path_a, "nobody.sock");
  snprintf(addr, sizeof addr, "unix+connect://%s", path_a);
  fx_setup(&fx, NULL);
  hcsb_request_t q = req_start("c");
  CHECK_EQ(api_call(fx.b, &q, 0, rec_cb, &r, NULL), 0);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, -ENOENT);
  CHECK_EQ(hcsb_bridge_close_cause(fx.b), -ENOENT);
  fx_run_until(&fx, &r.n, 1);
  CHECK_EQ(r.status, -ENOTCONN); /* never connected */
  fx_finish(&fx, 1);

  /* A socket file nobody listens on. */
  close(unix_listen(path_a));
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, -ECONNREFUSED);
  fx_finish(&fx, 1);

  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, "unix+connect://"), -EINVAL);
  CHECK_EQ(fx_connect(&fx, "carrier-pigeon://x"), -EINVAL);
  fx_finish(&fx, 1);
}

static void test_unix_accept_timeout(void) {
  fx_t fx;
  char addr[300];
  tmp_path(path_a, "lonely.sock");
  snprintf(addr, sizeof addr, "unix://%s?timeout=100", path_a);
  fx_setup(&fx, NULL);
  uv_update_time(&fx.loop);
  uint64_t t0 = uv_now(&fx.loop);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, -ETIMEDOUT);
  CHECK(uv_now(&fx.loop) - t0 >= 100);
  fx_finish(&fx, 1);
  CHECK(!exists(path_a));
}

/* A stale socket file is replaced; a live listener or a regular file is
 * never touched. */
static void test_unix_listen_stale_and_busy(void) {
  fx_t fx;
  char addr[300];
  tmp_path(path_a, "stale.sock");
  snprintf(addr, sizeof addr, "unix://%s?timeout=50", path_a);
  close(unix_listen(path_a)); /* leaves a socket file behind */
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, -ETIMEDOUT);
  fx_finish(&fx, 1);

  int lfd = unix_listen(path_a);
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), -EADDRINUSE);
  fx_finish(&fx, 1);
  close(lfd);
  CHECK(exists(path_a));
  unlink(path_a);

  FILE *f = fopen(path_a, "w");
  CHECK(f != NULL);
  fclose(f);
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), -EADDRINUSE);
  fx_finish(&fx, 1);
  CHECK(exists(path_a));
}

/* Where others may write (a group-writable directory), a listener removes
 * its socket file only while it is still its own: a file put in its place
 * stays.  In a directory only we can write to, the file is removed when the
 * listener closes, and a stale one is cleared in both.  The directory is
 * checked again once loop time moved on: the same directory made
 * group-writable after a listener used it is treated as such. */
static void test_unix_listen_dir_kinds(void) {
  static const mode_t modes[2] = {0700, 0770};
  char dir[256], addr[400];
  fx_t fx;
  snprintf(dir, sizeof dir, "%s/relays", hcsb_test_tmpdir());
  CHECK_EQ(mkdir(dir, 0700), 0);
  snprintf(path_b, sizeof path_b, "%s/l.sock", dir);
  snprintf(addr, sizeof addr, "unix://%s?timeout=50", path_b);
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(chmod(dir, modes[i]), 0); /* whatever the umask */
    usleep(2000);                      /* the next millisecond of loop time */

    close(unix_listen(path_b)); /* stale */
    fx_setup(&fx, NULL);
    CHECK_EQ(fx_connect(&fx, addr), 0);
    CHECK(exists(path_b)); /* listening before the call returned */
    int fd = unix_dial(path_b);
    CHECK(fd >= 0);
    close(fd);
    fx_run_until(&fx, &fx.ready_n, 1);
    fx_finish(&fx, 1);
    CHECK(!exists(path_b));

    if (modes[i] == 0770) {
      fx_setup(&fx, NULL);
      CHECK_EQ(fx_connect(&fx, addr), 0);
      CHECK_EQ(unlink(path_b), 0);
      int theirs = unix_listen(path_b);
      fx_run_until(&fx, &fx.ready_n, 1);
      CHECK_EQ(fx.ready_status, -ETIMEDOUT);
      fx_finish(&fx, 1);
      CHECK(exists(path_b)); /* not ours: left alone */
      close(theirs);
      CHECK_EQ(unlink(path_b), 0);
    }
  }
  CHECK_EQ(rmdir(dir), 0);
}

/* ------------------------------------------------------------------------ */
/* fd:// */

static void test_fd_address(void) {
  fx_t fx;
  char addr[64];
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  snprintf(addr, sizeof addr, "fd://%d", sv[0]);
  fx_setup(&fx, NULL);
  peer_start(&fx.peer, sv[1], serve_one_call, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, 0);
  CHECK_EQ(hcsb_bridge_address(fx.b)->transport, HCSB_TRANSPORT_FD);
  CHECK_STR(hcsb_bridge_address(fx.b)->stdio_dir, "");
  one_call(&fx);
  fx_finish(&fx, 1);
  CHECK_EQ(write(sv[0], "x", 1), -1); /* the bridge owned and closed it */
  CHECK_EQ(errno, EBADF);
}

/* ------------------------------------------------------------------------ */
/* spawn: — the test binary re-executed as the guest (see main). */

static char self_exe[512];

static void guest_mode(const char *mode) {
  peer_t p;
  memset(&p, 0, sizeof p);
  p.fd = 0; /* stdin and stdout are the same socket */
  const char *pidfile = getenv("HCSB_TEST_PIDFILE");
  if (pidfile != NULL) {
    FILE *f = fopen(pidfile, "w");
    CHECK(f != NULL);
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
  }
  peer_negotiate(&p);
  pframe_t f;
  while (peer_read(&p, &f) == 0) {
    char body[512];
    const char *dir = getenv("HCSB_STDIO_DIR");
    snprintf(body, sizeof body,
             "{\"Result\":0,\"Properties\":\"{\\\"dir\\\":\\\"%s\\\"}\"}",
             dir ? dir : "(unset)");
    peer_send(&p,
              f.type == HCSB_MSG_GET_PROPERTIES
                  ? HCSB_MSG_GET_PROPERTIES_RESPONSE
                  : START_RESP,
              f.id, body);
    pframe_free(&f);
  }
  if (strcmp(mode, "stubborn") == 0) {
    signal(SIGTERM, SIG_IGN);
    sleep(60); /* only SIGKILL ends this */
  }
  _exit(0);
}

static char props_seen[512];
static int props_n;
static void props_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_response_t *resp) {
  (void)data;
  (void)gerr;
  CHECK_EQ(status, 0);
  CHECK(resp->properties != NULL);
  snprintf(props_seen, sizeof props_seen, "%.*s", (int)resp->properties_len,
           resp->properties);
  props_n++;
}

static int read_pid(const char *pidfile) {
  int pid = 0;
  FILE *f = fopen(pidfile, "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%d", &pid) != 1) pid = 0;
  fclose(f);
  return pid;
}

static void spawn_session(const char *mode, int *pid_out, uint64_t *close_ms,
                          char *dir_out) {
  fx_t fx;
  char addr[1024], pidfile[256], want[600];
  tmp_path(pidfile, "guest.pid");
  unlink(pidfile);
  setenv("HCSB_TEST_PIDFILE", pidfile, 1);
  setenv("HCSB_TEST_PEER", mode, 1);
  snprintf(addr, sizeof addr, "spawn:exec '%s'", self_exe);
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  unsetenv("HCSB_TEST_PEER");
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, 0);
  const hcsb_addr_t *a = hcsb_bridge_address(fx.b);
  CHECK_EQ(a->transport, HCSB_TRANSPORT_SPAWN);
  CHECK(a->stdio_dir[0] == '/');
  CHECK(is_dir(a->stdio_dir));
  snprintf(dir_out, 256, "%s", a->stdio_dir);

  hcsb_request_t q;
  memset(&q, 0, sizeof q);
  q.type = HCSB_MSG_GET_PROPERTIES;
  q.container_id = "c";
  q.u.get_properties.query = "{}";
  props_n = 0;
  CHECK_EQ(api_call(fx.b, &q, 0, props_cb, NULL, NULL), 0);
  fx_run_until(&fx, &props_n, 1);
  snprintf(want, sizeof want, "{\"dir\":\"%s\"}", dir_out);
  CHECK_STR(props_seen, want); /* HCSB_STDIO_DIR reached the child */
  *pid_out = read_pid(pidfile);
  CHECK(*pid_out > 0);
  CHECK_EQ(kill(*pid_out, 0), 0);

  uv_update_time(&fx.loop);
  uint64_t t0 = uv_now(&fx.loop);
  api_close(&fx);
  fx_run_until(&fx, &fx.closed_n, 1);
  uv_update_time(&fx.loop);
  *close_ms = uv_now(&fx.loop) - t0;
  fx_finish(&fx, 0);
}

static void test_spawn(void) {
  int pid;
  uint64_t ms;
  char dir[256];
  spawn_session("guest", &pid, &ms, dir);
  /* Reaped before close_cb: the PID is gone, not a zombie. */
  CHECK_EQ(kill(pid, 0), -1);
  CHECK_EQ(errno, ESRCH);
  CHECK(!exists(dir)); /* the private stdio directory went with it */
  CHECK(ms < 2000);    /* it left on EOF, well before the grace period */
}

static void test_spawn_stubborn_guest_killed(void) {
  int pid;
  uint64_t ms;
  char dir[256];
  spawn_session("stubborn", &pid, &ms, dir);
  CHECK_EQ(kill(pid, 0), -1);
  CHECK_EQ(errno, ESRCH);
  CHECK(ms >= 1900); /* the 2 s grace period, then SIGKILL */
  CHECK(!exists(dir));
}

/* A spawned guest gone before it negotiated: the open says so (-ECHILD)
 * rather than what the stream did (EOF, reset, or EPIPE when our first
 * write found it gone), and hcsb_bridge_guest_exit() says how it ended. */
static void spawn_gone(const char *address, int want_status, int want_signal) {
  fx_t fx;
  int st = -1, sig = -1;
  fx_setup(&fx, NULL);
  CHECK_EQ(hcsb_bridge_guest_exit(fx.b, &st, &sig), -ENOENT); /* nothing yet */
  CHECK_EQ(fx_connect(&fx, address), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, -ECHILD);
  CHECK_STR(hcsb_strerror(fx.ready_status),
            "the guest program exited before negotiating");
  CHECK_EQ(hcsb_bridge_guest_exit(fx.b, &st, &sig), 1);
  CHECK_EQ(st, want_status);
  CHECK_EQ(sig, want_signal);
  int cause = hcsb_bridge_close_cause(fx.b);
  CHECK(cause == UV_EOF || cause == UV_ECONNRESET || cause == UV_EPIPE);
  fx_finish(&fx, 1);
}

static void test_spawn_command_fails(void) {
  spawn_gone("spawn:exit 3", 3, 0);
  spawn_gone("spawn:/no/such/guest 2>/dev/null", 127, 0); /* not found */
  spawn_gone("spawn:kill -KILL $$", 0, SIGKILL);
}

/* A guest that closes the stream but keeps running: the open's failure
 * waits a moment for an exit that does not come, then reports the stream
 * (the guest is killed when the bridge closes). */
static void test_spawn_stream_closed_guest_alive(void) {
  fx_t fx;
  int st = -1, sig = -1;
  fx_setup(&fx, NULL);
  uv_update_time(&fx.loop);
  uint64_t t0 = uv_now(&fx.loop);
  CHECK_EQ(fx_connect(&fx, "spawn:exec sleep 30 <&- >&-"), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  uv_update_time(&fx.loop);
  CHECK(fx.ready_status == -ECONNRESET || fx.ready_status == -EPIPE);
  CHECK(uv_now(&fx.loop) - t0 >= 900); /* it waited for the exit */
  CHECK_EQ(hcsb_bridge_guest_exit(fx.b, &st, &sig), 0);
  fx_finish(&fx, 1);
}

/* A peer that sends our NegotiateProtocol back (a request where the answer
 * should be) is no GCS: the open fails at once, not at its timeout. */
static void test_spawn_echo_peer_is_no_gcs(void) {
  fx_t fx;
  fx_setup(&fx, NULL);
  uv_update_time(&fx.loop);
  uint64_t t0 = uv_now(&fx.loop);
  CHECK_EQ(fx_connect(&fx, "spawn:exec cat"), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  uv_update_time(&fx.loop);
  CHECK_EQ(fx.ready_status, -ENOMSG);
  CHECK(uv_now(&fx.loop) - t0 < 5000); /* the open timeout is 120 s */
  CHECK(!hcsb_bridge_is_connected(fx.b));
  CHECK_EQ(hcsb_bridge_close_cause(fx.b), -ENOMSG);
  fx_finish(&fx, 1);
}

/* Closing before the guest negotiated: no grace period, and the child's
 * whole process group (here a shell and its background child) is killed. */
static void test_spawn_unready_group_killed_at_once(void) {
  fx_t fx;
  char addr[600], pidfile[256];
  tmp_path(pidfile, "group.pid");
  unlink(pidfile);
  snprintf(addr, sizeof addr, "spawn:sleep 30 & echo \"$$ $!\" > '%s'; wait",
           pidfile);
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  int leader = 0, child = 0;
  for (int i = 0; i < 500 && child == 0; i++) { /* the shell writes it soon */
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    FILE *f = fopen(pidfile, "r");
    if (f != NULL) {
      if (fscanf(f, "%d %d", &leader, &child) != 2) child = 0;
      fclose(f);
    }
    if (child == 0) usleep(10000);
  }
  CHECK(leader > 0 && child > 0);
  CHECK_EQ(getpgid(child), leader); /* the spawned shell leads its group */
  CHECK(getsid(leader) ==
        leader); /* in a session of its own: no terminal's Ctrl-C */
  uv_update_time(&fx.loop);
  uint64_t t0 = uv_now(&fx.loop);
  api_close(&fx);
  fx_run_until(&fx, &fx.closed_n, 1);
  uv_update_time(&fx.loop);
  CHECK(uv_now(&fx.loop) - t0 < 1500); /* not the 2 s grace period */
  /* The background child is re-parented to init, which reaps it: wait. */
  int gone = 0;
  for (int i = 0; i < 200 && !gone; i++) {
    gone = kill(child, 0) == -1 && errno == ESRCH;
    if (!gone) {
      char path[64], st[256] = "";
      snprintf(path, sizeof path, "/proc/%d/stat", child);
      FILE *f = fopen(path, "r");
      if (f != NULL) {
        if (fgets(st, sizeof st, f) == NULL) st[0] = '\0';
        fclose(f);
      }
      const char *rp = strrchr(st, ')');
      gone =
          rp != NULL && rp[1] == ' ' && rp[2] == 'Z'; /* dead, not yet reaped */
      if (!gone) usleep(10000);
    }
  }
  if (!gone) kill(child, SIGKILL);
  CHECK(gone);
  CHECK_EQ(kill(leader, 0), -1);
  fx_finish(&fx, 0);
}

/* ------------------------------------------------------------------------ */
/* Hybrid vsock, host-initiated: a Unix-socket stand-in for the VMM. */

typedef struct vmm_s {
  int lfd;
  const char *reply; /* NULL: hang up without a word */
  int serve;         /* then act as the guest */
  int early_frames;  /* send the negotiate answer right behind "OK" */
  char got[64];
} vmm_t;

static void script_vmm(peer_t *p) {
  vmm_t *v = p->arg;
  p->fd = accept(v->lfd, NULL, NULL);
  CHECK(p->fd >= 0);
  size_t n = 0;
  while (n < sizeof v->got - 1) {               /* one line */
    if (read(p->fd, v->got + n, 1) != 1) break; /* the dialer gave up */
    if (v->got[n++] == '\n') break;
  }
  v->got[n] = '\0';
  if (v->reply == NULL) return;
  if (v->early_frames) {
    char buf[1024];
    size_t len = strlen(v->reply);
    memcpy(buf, v->reply, len);
    len += peer_frame(buf + len, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, 1,
                      PEER_NEGOTIATE_BODY);
    peer_send_raw(p, buf, len);
    CHECK_U64(peer_expect(p, HCSB_MSG_NEGOTIATE_PROTOCOL), 1);
    uint64_t id = peer_expect(p, HCSB_MSG_START);
    peer_send(p, START_RESP, id, PEER_OK_BODY);
    CHECK_EQ(peer_drain(p), 0);
    return;
  }
  peer_send_raw(p, v->reply, strlen(v->reply));
  if (v->serve) {
    serve_one_call(p);
  } else {
    peer_wait_gate(p);
  }
}

static void hybrid_case(vmm_t *v, const char *opts, int want) {
  fx_t fx;
  char addr[300];
  tmp_path(path_a, "vmm.sock");
  unlink(path_a);
  v->lfd = unix_listen(path_a);
  snprintf(addr, sizeof addr, "hvsock+fc+connect://%s:1234%s", path_a, opts);
  fx_setup(&fx, NULL);
  peer_start(&fx.peer, -1, script_vmm, v);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, want);
  if (want == 0) one_call(&fx);
  peer_open_gate(&fx.peer);
  fx_finish(&fx, 1);
  if (want != -ETIMEDOUT) CHECK_STR(v->got, "CONNECT 1234\n");
  close(v->lfd);
}

static void test_hybrid_connect(void) {
  vmm_t v = {0, "OK 1073741824\n", 1, 0, ""};
  hybrid_case(&v, "", 0);
}

static void test_hybrid_connect_bytes_right_after_ok(void) {
  vmm_t v = {0, "OK 7\n", 0, 1, ""};
  hybrid_case(&v, "", 0);
}

static void test_hybrid_connect_bad_reply(void) {
  vmm_t v = {0, "NOPE\n", 0, 0, ""};
  hybrid_case(&v, "", -EPROTO);
  vmm_t w = {0, "OK 12x\n", 0, 0, ""};
  hybrid_case(&w, "", -EPROTO);
  vmm_t x = {0, "OK 1234 and then a very long line without end", 0, 0, ""};
  hybrid_case(&x, "", -EPROTO);
}

static void test_hybrid_connect_hangup(void) {
  vmm_t v = {0, NULL, 0, 0, ""};
  hybrid_case(&v, "", -ECONNREFUSED);
}

static void test_hybrid_connect_timeout(void) {
  vmm_t v = {0, "", 0, 0, ""}; /* accepts, reads, says nothing */
  hybrid_case(&v, "?timeout=150", -ETIMEDOUT);
}

/* Hybrid vsock, guest-initiated: the VMM connects to <path>_<port>. */
static void test_hybrid_listen(void) {
  fx_t fx;
  char addr[300];
  tmp_path(path_a, "vm.vsock");
  snprintf(path_b, sizeof path_b, "%s_%u", path_a, 1073741824u);
  snprintf(addr, sizeof addr, "hvsock+fc://%s", path_a);
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  CHECK(exists(path_b));
  peer_start(&fx.peer, -1, script_dial_then_serve, path_b);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, 0);
  one_call(&fx);
  fx_finish(&fx, 1);
}

/* ------------------------------------------------------------------------ */
/* The stdio listener API (hcsb__listen) */

typedef struct lfx_s {
  uv_loop_t loop;
  hcsb__listener_t *l;
  int accepted, timeouts, echoed;
  uv_stream_t *streams[4];
  uv_write_t wr[4];
  int close_in_cb;
} lfx_t;

static void echo_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char mem[256];
  (void)h;
  (void)hint;
  *buf = uv_buf_init(mem, sizeof mem);
}

static void echo_written(uv_write_t *w, int status) {
  CHECK_EQ(status, 0);
  hcsb__stream_close(w->handle);
}

static void echo_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  lfx_t *x = s->data;
  if (nread <= 0) return;
  CHECK_EQ(nread, 5);
  CHECK_MEM(buf->base, "hello", 5);
  uv_read_stop(s);
  uv_buf_t out = uv_buf_init("world", 5);
  CHECK_EQ(uv_write(&x->wr[x->echoed], s, &out, 1, echo_written), 0);
  x->echoed++;
}

static void on_stdio_accept(void *data, hcsb__listener_t *l, int status,
                            uv_stream_t *s) {
  lfx_t *x = data;
  CHECK(l == x->l);
  if (status == -ETIMEDOUT) {
    x->timeouts++;
    CHECK(s == NULL);
    return;
  }
  CHECK_EQ(status, 0);
  x->streams[x->accepted++] = s;
  s->data = x;
  CHECK_EQ(uv_read_start(s, echo_alloc, echo_read), 0);
  if (x->close_in_cb) {
    hcsb__listener_close(l);
    x->l = NULL;
  }
}

static void hello(const char *path, int times) {
  for (int i = 0; i < times; i++) {
    int fd = unix_dial(path);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "hello", 5), 5);
    char buf[8];
    size_t n = 0;
    while (n < 5) {
      ssize_t r = read(fd, buf + n, 5 - n);
      CHECK(r > 0);
      n += (size_t)r;
    }
    CHECK_MEM(buf, "world", 5);
    close(fd);
  }
}

static void script_hello(peer_t *p) {
  hello(p->arg, 2);
}
static void script_hello_once(peer_t *p) {
  hello(p->arg, 1);
}

static void run_until(uv_loop_t *loop, int *counter, int value) {
  run_loop_until(loop, counter, value);
}

static void listener_case(const char *address, const char *want_path,
                          uint32_t port) {
  lfx_t x;
  hcsb_addr_t a;
  peer_t p;
  memset(&x, 0, sizeof x);
  memset(&p, 0, sizeof p);
  CHECK_EQ(hcsb_addr_parse(address, &a), 0);
  CHECK_EQ(uv_loop_init(&x.loop), 0);
  CHECK_EQ(hcsb__listen(&x.loop, &a, port, 0, on_stdio_accept, &x, &x.l), 0);
  CHECK_STR(hcsb__listener_path(x.l), want_path);
  CHECK(exists(want_path)); /* listening before hcsb__listen returns */
  peer_start(&p, -1, script_hello, (void *)want_path);
  run_until(&x.loop, &x.echoed, 2); /* it keeps listening after an accept */
  peer_join(&p);
  CHECK_EQ(x.accepted, 2);
  hcsb__listener_close(x.l);
  CHECK(!exists(want_path));
  CHECK_EQ(uv_run(&x.loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ(uv_loop_close(&x.loop), 0);
}

static void test_stdio_listener_unix(void) {
  char addr[300], want[300];
  snprintf(addr, sizeof addr, "unix://%s/bridge.sock", hcsb_test_tmpdir());
  snprintf(want, sizeof want, "%s/%u.sock", hcsb_test_tmpdir(), 0x40000001u);
  listener_case(addr, want, 0x40000001u);
  /* fd:// and an explicit stdio dir */
  snprintf(addr, sizeof addr, "fd://3?stdio=%s", hcsb_test_tmpdir());
  snprintf(want, sizeof want, "%s/109.sock", hcsb_test_tmpdir());
  listener_case(addr, want, 109);
}

static void test_stdio_listener_hybrid(void) {
  char addr[300], want[300];
  snprintf(addr, sizeof addr, "hvsock+fc://%s/vm.vsock", hcsb_test_tmpdir());
  snprintf(want, sizeof want, "%s/vm.vsock_%u", hcsb_test_tmpdir(),
           0x40000002u);
  listener_case(addr, want, 0x40000002u);
}

static void test_stdio_listener_timeout_and_close_in_cb(void) {
  lfx_t x;
  hcsb_addr_t a;
  peer_t p;
  char addr[300], want[300];
  memset(&x, 0, sizeof x);
  memset(&p, 0, sizeof p);
  snprintf(addr, sizeof addr, "unix://%s/b.sock", hcsb_test_tmpdir());
  snprintf(want, sizeof want, "%s/5.sock", hcsb_test_tmpdir());
  CHECK_EQ(hcsb_addr_parse(addr, &a), 0);
  CHECK_EQ(uv_loop_init(&x.loop), 0);
  CHECK_EQ(hcsb__listen(&x.loop, &a, 5, 80, on_stdio_accept, &x, &x.l), 0);
  run_until(&x.loop, &x.timeouts, 1);
  CHECK_EQ(x.accepted, 0);
  CHECK(exists(want)); /* a timeout does not stop the listener */
  x.close_in_cb = 1;
  peer_start(&p, -1, script_hello_once, want);
  run_until(&x.loop, &x.echoed, 1);
  CHECK(x.l == NULL); /* closed from inside its callback */
  CHECK(!exists(want));
  CHECK_EQ(unix_dial(want), -ENOENT);
  peer_join(&p);
  CHECK_EQ(uv_run(&x.loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ(x.timeouts, 1);
  CHECK_EQ(uv_loop_close(&x.loop), 0);
}

/* Out of descriptors when the guest dials: the dial is refused (libuv
 * closes it with the descriptor it keeps in reserve) instead of spinning,
 * and once descriptors are back the next dial is accepted as usual. */
static int emfile_ok, emfile_errors;
static void on_emfile_accept(void *data, hcsb__listener_t *l, int status,
                             uv_stream_t *s) {
  (void)data;
  (void)l;
  if (status == 0) {
    emfile_ok++;
    hcsb__stream_close(s);
  } else {
    CHECK(s == NULL);
    emfile_errors++;
  }
}

static void test_stdio_listener_out_of_descriptors(void) {
  uv_loop_t loop;
  hcsb_addr_t a;
  hcsb__listener_t *l = NULL;
  struct rlimit rl, low;
  char addr[300], path[300], c;
  int d1, d2, d3, spare;
  snprintf(addr, sizeof addr, "unix://%s/b.sock", hcsb_test_tmpdir());
  snprintf(path, sizeof path, "%s/9.sock", hcsb_test_tmpdir());
  CHECK_EQ(hcsb_addr_parse(addr, &a), 0);
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(hcsb__listen(&loop, &a, 9, 0, on_emfile_accept, NULL, &l), 0);
  uv_run(&loop, UV_RUN_NOWAIT); /* the listener is polled */
  d1 = unix_dial(path);
  d2 = unix_dial(path);
  CHECK(d1 >= 0 && d2 >= 0);
  /* No descriptor left for accept4 (each test runs in a child of its own):
   * the lowest free number becomes the limit. */
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  spare = dup(0);
  CHECK(spare >= 0);
  close(spare);
  low = rl;
  low.rlim_cur = (rlim_t)spare;
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(emfile_ok, 0);
  CHECK_EQ(read(d1, &c, 1), 0); /* refused */
  CHECK_EQ(read(d2, &c, 1), 0);
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  d3 = unix_dial(path);
  CHECK(d3 >= 0);
  for (int i = 0; i < 200 && emfile_ok == 0; i++) uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(emfile_ok, 1);
  CHECK(emfile_errors <= 1);
  hcsb__listener_close(l);
  CHECK(!exists(path));
  CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ(uv_loop_close(&loop), 0);
  CHECK_EQ(read(d3, &c, 1), 0);
  close(d1);
  close(d2);
  close(d3);
}

static void test_stdio_listener_errors(void) {
  uv_loop_t loop;
  hcsb_addr_t a;
  hcsb__listener_t *l = NULL;
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(hcsb_addr_parse("fd://3", &a), 0); /* no stdio dir anywhere */
  CHECK_EQ(hcsb__listen(&loop, &a, 7, 0, on_stdio_accept, NULL, &l), -EINVAL);
  CHECK_EQ(hcsb_addr_parse("spawn:true", &a), 0);
  CHECK_EQ(hcsb__listen(&loop, &a, 7, 0, on_stdio_accept, NULL, &l), -EINVAL);
  char addr[300];
  /* The bridge path fits in sun_path, "<its dir>/7.sock" does not. */
  snprintf(addr, sizeof addr, "unix:///tmp/%098d/b", 0);
  CHECK_EQ(hcsb_addr_parse(addr, &a), 0);
  CHECK_EQ(hcsb__listen(&loop, &a, 7, 0, on_stdio_accept, NULL, &l),
           -ENAMETOOLONG);
  CHECK(l == NULL);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------------ */
/* AF_VSOCK: bind and listen only (SAFETY: never connect). */

static int vsock_available(void) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

static void test_vsock_listen(void) {
  if (!vsock_available()) {
    fprintf(stderr, "  skipped: no AF_VSOCK here\n");
    return;
  }
  uint32_t port = 0x4000a000u + ((uint32_t)getpid() & 0xfffu);
  lfx_t x;
  hcsb_addr_t a;
  hcsb__listener_t *second = NULL;
  memset(&x, 0, sizeof x);
  CHECK_EQ(hcsb_addr_parse("vsock://ANY?peer=3", &a), 0);
  CHECK_EQ(uv_loop_init(&x.loop), 0);
  CHECK_EQ(hcsb__listen(&x.loop, &a, port, 60, on_stdio_accept, &x, &x.l), 0);
  CHECK_STR(hcsb__listener_path(x.l), "");
  CHECK_EQ(hcsb__listen(&x.loop, &a, port, 0, on_stdio_accept, &x, &second),
           -EADDRINUSE);
  run_until(&x.loop, &x.timeouts, 1);
  CHECK_EQ(x.accepted, 0);
  hcsb__listener_close(x.l);
  CHECK_EQ(uv_run(&x.loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ(uv_loop_close(&x.loop), 0);

  /* The bridge listening on vsock: nobody dials, the accept times out. */
  fx_t fx;
  char addr[128];
  snprintf(addr, sizeof addr, "vsock://ANY:%u?timeout=60", port + 1);
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, -ETIMEDOUT);
  CHECK_EQ(hcsb_bridge_address(fx.b)->transport, HCSB_TRANSPORT_VSOCK);
  fx_finish(&fx, 1);
}

/* Closing the bridge while it still waits for the guest's dial. */
static void test_close_while_accepting(void) {
  fx_t fx;
  char addr[300];
  tmp_path(path_a, "pending.sock");
  snprintf(addr, sizeof addr, "unix://%s", path_a);
  fx_setup(&fx, NULL);
  CHECK_EQ(fx_connect(&fx, addr), 0);
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  api_close(&fx);
  fx_run_until(&fx, &fx.closed_n, 1);
  CHECK_EQ(fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, -ECANCELED);
  CHECK(!exists(path_a));
  fx_finish(&fx, 0);
}

int main(int argc, char **argv) {
  const char *mode = getenv("HCSB_TEST_PEER");
  if (mode != NULL) guest_mode(mode);
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n > 0) self_exe[n] = '\0';
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(unix_listen),
      TEST_ENTRY(unix_connect),
      TEST_ENTRY(unix_connect_errors),
      TEST_ENTRY(unix_accept_timeout),
      TEST_ENTRY(unix_listen_stale_and_busy),
      TEST_ENTRY(unix_listen_dir_kinds),
      TEST_ENTRY(fd_address),
      TEST_ENTRY(spawn),
      TEST_ENTRY(spawn_stubborn_guest_killed),
      TEST_ENTRY(spawn_command_fails),
      TEST_ENTRY(spawn_stream_closed_guest_alive),
      TEST_ENTRY(spawn_echo_peer_is_no_gcs),
      TEST_ENTRY(spawn_unready_group_killed_at_once),
      TEST_ENTRY(hybrid_connect),
      TEST_ENTRY(hybrid_connect_bytes_right_after_ok),
      TEST_ENTRY(hybrid_connect_bad_reply),
      TEST_ENTRY(hybrid_connect_hangup),
      TEST_ENTRY(hybrid_connect_timeout),
      TEST_ENTRY(hybrid_listen),
      TEST_ENTRY(stdio_listener_unix),
      TEST_ENTRY(stdio_listener_hybrid),
      TEST_ENTRY(stdio_listener_timeout_and_close_in_cb),
      TEST_ENTRY(stdio_listener_errors),
      TEST_ENTRY(stdio_listener_out_of_descriptors),
      TEST_ENTRY(vsock_listen),
      TEST_ENTRY(close_while_accepting),
  };
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
