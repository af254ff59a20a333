/* runc as the v0.11.8 GCS runs it: the command lines (`--log FILE
 * --log-format json` in front, `create --no-pivot` since the root is an
 * initramfs that pivot_root cannot leave, `exec -d` so the process is
 * reparented to us, the child subreaper, when runc exits), the last error
 * in runc's JSON log (what the GCS reports when a command fails), pid
 * files and the console socket on which runc hands over a pty master. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "guest/act.h"

int hcsb__grunc_id_ok(const char *id) {
  /* A leading '-' would be one of runc's flags on its command line. */
  return id != NULL && id[0] != '-' && hcsb__gctr_id_ok(id);
}

int hcsb__grunc_argv(const hcsb__grunc_cmd_t *c, char num[16],
                     const char *argv[HCSB__GRUNC_MAX_ARGS]) {
  int n = 0;

  if (c->runc == NULL || !hcsb__grunc_id_ok(c->id)) return -EINVAL;
  argv[n++] = c->runc;
  if (c->log != NULL) {
    argv[n++] = "--log";
    argv[n++] = c->log;
    argv[n++] = "--log-format";
    argv[n++] = "json";
  }
  switch (c->op) {
    case HCSB__GRUNC_CREATE:
      if (c->bundle == NULL || c->pid_file == NULL) return -EINVAL;
      argv[n++] = "create";
      argv[n++] = "-b";
      argv[n++] = c->bundle;
      argv[n++] = "--no-pivot";
      argv[n++] = "--pid-file";
      argv[n++] = c->pid_file;
      if (c->console != NULL) {
        argv[n++] = "--console-socket";
        argv[n++] = c->console;
      }
      break;
    case HCSB__GRUNC_START:
      argv[n++] = "start";
      break;
    case HCSB__GRUNC_EXEC:
      if (c->process == NULL || c->pid_file == NULL) return -EINVAL;
      argv[n++] = "exec";
      argv[n++] = "-d";
      argv[n++] = "--process";
      argv[n++] = c->process;
      argv[n++] = "--pid-file";
      argv[n++] = c->pid_file;
      if (c->console != NULL) {
        argv[n++] = "--console-socket";
        argv[n++] = c->console;
      }
      break;
    case HCSB__GRUNC_KILL:
      if (c->sig < 1 || c->sig > 64) return -EINVAL;
      argv[n++] = "kill";
      if (c->all) argv[n++] = "--all";
      break;
    case HCSB__GRUNC_DELETE:
      argv[n++] = "delete";
      if (c->force) argv[n++] = "--force";
      break;
    case HCSB__GRUNC_STATE:
      argv[n++] = "state";
      break;
    case HCSB__GRUNC_UPDATE:
      if (c->process == NULL) return -EINVAL;
      argv[n++] = "update";
      argv[n++] = "--resources";
      argv[n++] = c->process;
      break;
    default:
      return -EINVAL;
  }
  argv[n++] = c->id;
  if (c->op == HCSB__GRUNC_KILL) {
    snprintf(num, 16, "%d", c->sig);
    argv[n++] = num;
  }
  argv[n] = NULL;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The log: one JSON object per line, {"level":"error","msg":"...",
 * "time":"..."} (and "error" in some entries).  The last entry at error
 * level or worse is the reason. */

static int is_error_level(const char *lvl) {
  return strcmp(lvl, "error") == 0 || strcmp(lvl, "fatal") == 0 ||
         strcmp(lvl, "panic") == 0;
}

int hcsb__grunc_log_error(const char *path, char *out, size_t size) {
  FILE *f = fopen(path, "re");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int found = 0;

  if (f == NULL) return -ENOENT;
  while ((n = getline(&line, &cap, f)) > 0) {
    json_object *o = NULL, *lvl, *msg, *err;
    if (n > 65536 || hcsb__json_parse(line, (size_t)n, &o) != 0) continue;
    lvl = hcsb__json_get(o, "level");
    msg = hcsb__json_get(o, "msg");
    err = hcsb__json_get(o, "error");
    if (json_object_is_type(lvl, json_type_string) &&
        is_error_level(json_object_get_string(lvl)) &&
        json_object_is_type(msg, json_type_string)) {
      if (json_object_is_type(err, json_type_string))
        snprintf(out, size, "%s: %s", json_object_get_string(msg),
                 json_object_get_string(err));
      else
        snprintf(out, size, "%s", json_object_get_string(msg));
      found = 1;
    }
    json_object_put(o);
  }
  free(line);
  fclose(f);
  return found ? 0 : -ENOENT;
}

int hcsb__grunc_read_pid(const char *path, pid_t *pid) {
  char buf[32], *end;
  ssize_t n;
  long v;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0) return -errno;
  do n = read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return n < 0 ? -errno : -EINVAL;
  buf[n] = '\0';
  errno = 0;
  v = strtol(buf, &end, 10);
  if (errno != 0 || end == buf || (*end != '\0' && *end != '\n') || v <= 1 ||
      v > 4194304)
    return -EINVAL;
  *pid = (pid_t)v;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Console socket: runc connects, sends the pty master with SCM_RIGHTS
 * (and the slave's name as data), then closes. */

int hcsb__grunc_console_listen(const char *path) {
  struct sockaddr_un sa;
  int fd, err;

  if ((err = hcsb__gunix_addr(path, &sa)) < 0) return err;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  unlink(path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) {
    err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

int hcsb__grunc_console_recv(int lfd) {
  char name[4096];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {name, sizeof name};
  struct msghdr msg;
  struct cmsghdr *cm;
  int fd, master = -1, err;
  ssize_t n;

  do fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno == EAGAIN ? -ENOTCONN : -errno;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  err = n < 0 ? -errno : -EBADMSG;
  for (cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm != NULL;
       cm = CMSG_NXTHDR(&msg, cm)) {
    size_t i, nfd;
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (i = 0; i < nfd; i++) { /* one is expected; others are closed */
      int got;
      memcpy(&got, CMSG_DATA(cm) + i * sizeof got, sizeof got);
      if (master < 0)
        master = got;
      else
        close(got);
    }
  }
  close(fd);
  return master >= 0 ? master : err;
}
