/* shimcall: one Task request to a shim over ttrpc, the way containerd
 * sends it, and the answer on stdout.  For the shim tests (a pod member
 * created without containerd, straight on the pod's shim):
 *
 *   shimcall SOCKET create ID BUNDLE [STDOUT [STDERR]]   -> pid=N
 *   shimcall SOCKET start ID [EXEC]                      -> pid=N
 *   shimcall SOCKET exec ID EXEC STDOUT ARG...           (adds an exec)
 *   shimcall SOCKET state ID [EXEC]   -> status=N pid=N exit_status=N
 *   shimcall SOCKET wait ID [EXEC]    -> exit_status=N
 *   shimcall SOCKET kill ID SIGNAL
 *   shimcall SOCKET delete ID [EXEC]  -> pid=N exit_status=N
 *   shimcall SOCKET pids ID           -> one pid per line
 *   shimcall SOCKET update ID JSON    (an OCI LinuxResources object)
 *
 * Exit status: 0 when the shim answered OK; 1 with "error CODE: MESSAGE"
 * on stderr when it answered an error; 2 for bad usage or a broken
 * connection.  Every read has a deadline ($SHIMCALL_TIMEOUT s, 300). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shim.pb-c.h"
#include "shim/ttrpc.h"

#define SERVICE "containerd.task.v2.Task"

static int sock = -1;

static void die(const char *what) {
  fprintf(stderr, "shimcall: %s\n", what);
  exit(2);
}

static void put_all(const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(sock, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write failed");
    p += w;
    n -= (size_t)w;
  }
}

/* Sends `msg` as METHOD, returns the answer's payload unpacked as `rdesc`
 * (NULL for Empty), exits on an error status. */
static ProtobufCMessage *call(const char *method, const ProtobufCMessage *msg,
                              const ProtobufCMessageDescriptor *rdesc) {
  static uint32_t stream = 1;
  hcsb__ttrpc_reader_t rd;
  hcsb__pb_budget_t b;
  Ttrpc__Response *resp = NULL;
  ProtobufCMessage *out = NULL;
  uint8_t *frame, buf[65536], *payload;
  size_t flen, plen;
  int done = 0, timeout_s = 300;
  const char *env = getenv("SHIMCALL_TIMEOUT");
  time_t end;

  if (env != NULL && atoi(env) > 0) timeout_s = atoi(env);
  end = time(NULL) + timeout_s;
  if (hcsb__ttrpc_request_frame(stream, SERVICE, method, msg, 0, NULL, 0,
                                &frame, &flen) != 0)
    die("cannot encode the request");
  put_all(frame, flen);
  free(frame);
  hcsb__ttrpc_reader_init(&rd, 0);
  while (!done) {
    struct pollfd pfd = {sock, POLLIN, 0};
    ssize_t n, used;
    size_t off = 0;
    if (time(NULL) > end) die("no answer in time");
    if (poll(&pfd, 1, 1000) <= 0) continue;
    n = read(sock, buf, sizeof buf);
    if (n <= 0) die("the shim closed the connection");
    while (off < (size_t)n && !done) {
      used = hcsb__ttrpc_reader_feed(&rd, buf + off, (size_t)n - off, &done);
      if (used < 0) die("bad frame from the shim");
      off += (size_t)used;
      if (done && rd.h.stream_id != stream) { /* not ours: skip */
        free(hcsb__ttrpc_reader_take(&rd, &plen));
        done = 0;
      }
    }
  }
  payload = hcsb__ttrpc_reader_take(&rd, &plen);
  hcsb__ttrpc_reader_free(&rd);
  hcsb__pb_budget_init(&b, 0);
  if (hcsb__ttrpc_response_unpack(payload, plen, &b, &resp) != 0)
    die("bad response");
  if (resp->status != NULL && resp->status->code != 0) {
    fprintf(stderr, "error %d: %s\n", resp->status->code,
            resp->status->message);
    exit(1);
  }
  if (rdesc != NULL) {
    out = protobuf_c_message_unpack(rdesc, NULL, resp->payload.len,
                                    resp->payload.data);
    if (out == NULL) die("bad payload");
  }
  protobuf_c_message_free_unpacked(&resp->base, &b.allocator);
  free(payload);
  stream += 2;
  return out;
}

int main(int argc, char **argv) {
  struct sockaddr_un sa;
  const char *verb, *id, *exec_id;

  if (argc < 4) die("usage: shimcall SOCKET VERB ID ...");
  verb = argv[2];
  id = argv[3];
  exec_id = argc > 4 ? argv[4] : "";
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (strncmp(argv[1], "unix://", 7) == 0) argv[1] += 7;
  if (strlen(argv[1]) >= sizeof sa.sun_path) die("socket path too long");
  strcpy(sa.sun_path, argv[1]);
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof sa) != 0)
    die("cannot connect to the shim");

  if (strcmp(verb, "create") == 0 && argc >= 5) {
    Containerd__Task__V2__CreateTaskRequest r =
        CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
    Containerd__Task__V2__CreateTaskResponse *a;
    r.id = (char *)id;
    r.bundle = argv[4];
    if (argc > 5) r.stdout = argv[5];
    if (argc > 6) r.stderr = argv[6];
    a = (void *)call("Create", &r.base,
                     &containerd__task__v2__create_task_response__descriptor);
    printf("pid=%u\n", a->pid);
    protobuf_c_message_free_unpacked(&a->base, NULL);
  } else if (strcmp(verb, "start") == 0) {
    Containerd__Task__V2__StartRequest r =
        CONTAINERD__TASK__V2__START_REQUEST__INIT;
    Containerd__Task__V2__StartResponse *a;
    r.id = (char *)id;
    r.exec_id = (char *)exec_id;
    a = (void *)call("Start", &r.base,
                     &containerd__task__v2__start_response__descriptor);
    printf("pid=%u\n", a->pid);
    protobuf_c_message_free_unpacked(&a->base, NULL);
  } else if (strcmp(verb, "exec") == 0 && argc >= 7) {
    Containerd__Task__V2__ExecProcessRequest r =
        CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
    Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT;
    char json[8192];
    size_t n = 0;
    int i;
    n += (size_t)snprintf(json + n, sizeof json - n, "{\"args\":[");
    for (i = 6; i < argc && n < sizeof json; i++)
      n += (size_t)snprintf(json + n, sizeof json - n, "%s\"%s\"",
                            i > 6 ? "," : "", argv[i]);
    if (n < sizeof json)
      n += (size_t)snprintf(json + n, sizeof json - n,
                            "],\"cwd\":\"/\",\"env\":[\"PATH=/bin\"]}");
    if (n >= sizeof json) die("arguments too long");
    spec.type_url =
        (char *)"types.containerd.io/opencontainers/runtime-spec/1/Process";
    spec.value.data = (uint8_t *)json;
    spec.value.len = n;
    r.id = (char *)id;
    r.exec_id = argv[4];
    r.stdout = argv[5];
    r.spec = &spec;
    call("Exec", &r.base, NULL);
  } else if (strcmp(verb, "state") == 0) {
    Containerd__Task__V2__StateRequest r =
        CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
    Containerd__Task__V2__StateResponse *a;
    r.id = (char *)id;
    r.exec_id = (char *)exec_id;
    a = (void *)call("State", &r.base,
                     &containerd__task__v2__state_response__descriptor);
    printf("status=%d pid=%u exit_status=%u\n", (int)a->status, a->pid,
           a->exit_status);
    protobuf_c_message_free_unpacked(&a->base, NULL);
  } else if (strcmp(verb, "wait") == 0) {
    Containerd__Task__V2__WaitRequest r =
        CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
    Containerd__Task__V2__WaitResponse *a;
    r.id = (char *)id;
    r.exec_id = (char *)exec_id;
    a = (void *)call("Wait", &r.base,
                     &containerd__task__v2__wait_response__descriptor);
    printf("exit_status=%u\n", a->exit_status);
    protobuf_c_message_free_unpacked(&a->base, NULL);
  } else if (strcmp(verb, "kill") == 0 && argc >= 5) {
    Containerd__Task__V2__KillRequest r =
        CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
    r.id = (char *)id;
    r.signal = (uint32_t)atoi(argv[4]);
    call("Kill", &r.base, NULL);
  } else if (strcmp(verb, "delete") == 0) {
    Containerd__Task__V2__DeleteRequest r =
        CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
    Containerd__Task__V2__DeleteResponse *a;
    r.id = (char *)id;
    r.exec_id = (char *)exec_id;
    a = (void *)call("Delete", &r.base,
                     &containerd__task__v2__delete_response__descriptor);
    printf("pid=%u exit_status=%u\n", a->pid, a->exit_status);
    protobuf_c_message_free_unpacked(&a->base, NULL);
  } else if (strcmp(verb, "update") == 0 && argc >= 5) {
    Containerd__Task__V2__UpdateTaskRequest r =
        CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__INIT;
    Google__Protobuf__Any res = GOOGLE__PROTOBUF__ANY__INIT;
    res.type_url = (char *)"types.containerd.io/opencontainers/runtime-spec/1/"
                           "LinuxResources";
    res.value.data = (uint8_t *)argv[4];
    res.value.len = strlen(argv[4]);
    r.id = (char *)id;
    r.resources = &res;
    call("Update", &r.base, NULL);
  } else if (strcmp(verb, "pids") == 0) {
    Containerd__Task__V2__PidsRequest r =
        CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
    Containerd__Task__V2__PidsResponse *a;
    size_t i;
    r.id = (char *)id;
    a = (void *)call("Pids", &r.base,
                     &containerd__task__v2__pids_response__descriptor);
    for (i = 0; i < a->n_processes; i++) printf("%u\n", a->processes[i]->pid);
    protobuf_c_message_free_unpacked(&a->base, NULL);
  } else {
    die("unknown verb or missing arguments");
  }
  close(sock);
  return 0;
}
