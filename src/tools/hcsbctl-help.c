/* hcsbctl: help texts and usage errors. */
#include <string.h>

#include "hcsbctl.h"

static const char main_help[] =
    "Usage: hcsbctl [GLOBAL OPTIONS] COMMAND [ARGS...]\n"
    "\n"
    "Drives a Linux guest's GCS over the HCS bridge protocol: processes in "
    "the\n"
    "utility VM, and the container workflow of a shim.\n"
    "\n"
    "Guest selection (default: spawn the built-in hcsb-guest emulator):\n"
    "  --guest ADDRESS   any transport address of the library, e.g.\n"
    "                    vsock://ANY (listen for a UVM's GCS), unix://PATH,\n"
    "                    unix+connect://PATH, hvsock+fc://PATH, fd://N, "
    "spawn:CMD\n"
    "  --spawn CMD       run CMD with /bin/sh -c, the bridge on its "
    "stdin/stdout\n"
    "  --stdio-dir DIR   where stdio relay listeners are opened for unix and\n"
    "                    spawn transports (<DIR>/<port>.sock)\n"
    "  --uvm             boot a utility VM (QEMU) and use the guest in it;\n"
    "                    its image is built for this run by hcsb-mkuvm\n"
    "                    (hcsb-guest by default), or taken as it is from:\n"
    "  --uvm-image DIR   hcsb-mkuvm's output (default $HCSB_UVM_IMAGE)\n"
    "  --uvm-guest \"PROGRAM ARGS\"  the guest program the VM's init runs\n"
    "  --uvm-file SRC[:DEST]  one more file in the VM (repeatable; with a\n"
    "                    built image ELF files bring their libraries, with\n"
    "                    --uvm-image they are copied as they are)\n"
    "  --uvm-accel tcg|kvm, --uvm-memory MB, --uvm-time-limit S\n"
    "  With --uvm the VM's console log is kept (and named) only when the VM\n"
    "  failed: it did not start, or it stopped while the command ran.\n"
    "  The built-in guest is $HCSB_GUEST, else hcsb-guest beside this "
    "program,\n"
    "  else " HCSB_LIBEXECDIR
    "/hcsb-guest.  Like a real GCS it cannot signal,\n"
    "  resize or size the terminal of UVM processes ('run'); --spawn\n"
    "  'hcsb-guest --allow-uvm-signal' emulates a guest that can.\n"
    "  A spawned guest runs in a session of its own, so a terminal's Ctrl-C\n"
    "  reaches hcsbctl only; when hcsbctl is done (or --timeout expires while\n"
    "  connecting) everything left in the guest's process group is killed.\n"
    "\n"
    "Other global options:\n"
    "  --timeout MS      limit for connecting and for each operation, "
    "including\n"
    "                    waiting for a process or container to exit\n"
    "  --json            machine-readable output for caps, ps, stats and wait\n"
    "  -v, --verbose     log every frame, with its ActivityId, to stderr; the\n"
    "                    bodies of Create and ExecuteProcess are withheld "
    "(they\n"
    "                    carry environments, which may hold secrets)\n"
    "  -vv               the same with those bodies shown\n"
    "  -h, --help        this help (COMMAND --help: that command's)\n"
    "  --version         the tool's and the library's versions\n"
    "\n"
    "Commands:\n"
    "  run [-t] [-i] [-e K=V]... [-w DIR] [--user U] [--] CMD [ARG]...\n"
    "                    run a process in the utility VM, relaying stdio\n"
    "  create ID --spec FILE [--layer DIR]... [--scratch DIR]\n"
    "  create ID --spec FILE --layer-image IMG... [--scratch DIR]   (--uvm)\n"
    "  start [-a] ID     start the container and its init process\n"
    "  exec ID [-t] [-i] [-e K=V]... [-w DIR] [--user U] [--] CMD [ARG]...\n"
    "  kill ID [--pid PID] [-s SIGNAL]\n"
    "  wait ID           wait for the container's exit notification\n"
    "  ps ID             the container's processes\n"
    "  stats ID          the container's statistics\n"
    "  shutdown ID [--force]\n"
    "  delete ID         DeleteContainerState\n"
    "  modify --json FILE  send a ModificationRequest (ModifySettings on the "
    "UVM)\n"
    "  stacks            the guest's DumpStacks text\n"
    "  caps              negotiated version, OS and capabilities\n"
    "  script [--keep-going] [FILE|-]\n"
    "                    run one command per line over one connection\n"
    "\n"
    "Each invocation opens a new connection, and a new connection means a new\n"
    "guest (the built-in one, or a real GCS whose bridge dropped, starts "
    "empty):\n"
    "a container created by one hcsbctl command is unknown to the next (\"no\n"
    "container ID in this guest\").  Run a container workflow as one 'script'\n"
    "(a file, or commands fed to 'script -' through a pipe).\n"
    "\n"
    "Exit status:\n"
    "  0  success; run, exec and start: the process's exit code, 128+N when\n"
    "     signal N killed it (see run --help)\n"
    "  1  the guest refused or failed the operation (its error is printed as "
    "one\n"
    "     line: guest error 0x... (Name): message)\n"
    "  2  usage error\n"
    "  3  connection or transport failure, including losing the connection\n"
    "  4  timeout (--timeout)\n"
    "  128+N  stopped by signal N (SIGINT, SIGTERM, SIGHUP, SIGQUIT) while no\n"
    "     process runs in the foreground (one that does gets it forwarded):\n"
    "     the connection is closed, a spawned guest stopped and what was\n"
    "     created for it (stdio directory, listening socket) removed\n";

static const struct {
  const char *cmd;
  const char *text;
} helps[] = {
    {"run",
     "Usage: hcsbctl run [-t] [-i] [-e K=V]... [-w DIR] [--user U] [--] CMD "
     "[ARG]...\n"
     "\n"
     "Runs CMD in the utility VM (ExecuteProcess on the null container), "
     "relays\n"
     "its stdout and stderr to ours, and exits with its exit code.\n"
     "\n"
     "  -t, --tty          give it a pty (stdout and stderr merged); our "
     "window\n"
     "                     size goes with the request (ConsoleSize) and a\n"
     "                     ResizeConsole follows every SIGWINCH\n"
     "  -i, --interactive  relay our stdin; at its end the process's stdin is\n"
     "                     closed.  Without -i the process gets no stdin, "
     "except\n"
     "                     that -t with a terminal on stdin implies -i; then "
     "the\n"
     "                     terminal is in raw mode while the process runs\n"
     "                     (restored on every exit)\n"
     "  -e, --env K=V      environment (repeatable); -e K passes our value of "
     "K.\n"
     "                     PATH defaults to the usual list; -t sets "
     "TERM=xterm\n"
     "  -w, --workdir DIR  working directory\n"
     "  -u, --user U       container processes only (exec); refused here\n"
     "\n"
     "SIGINT (Ctrl-C), SIGTERM, SIGHUP and SIGQUIT sent to hcsbctl are "
     "forwarded\n"
     "to the process.  A real GCS can neither signal nor resize UVM processes\n"
     "(it answers 0xC037010E): then hcsbctl says so once, gives up and exits\n"
     "with 128+signal.  It ignores ConsoleSize too, so with -t the terminal\n"
     "stays 0x0: hcsbctl checks with one ResizeConsole at start and says so\n"
     "once (a refused resize later is said once as well).  The built-in\n"
     "emulator does the same; --spawn 'hcsb-guest --allow-uvm-signal'\n"
     "emulates a guest that can do all three.\n"
     "\n"
     "Exit status: the process's exit code; 128+N when signal N killed it.\n"
     "Container processes (exec, start) report 128+N themselves.  For a UVM\n"
     "process the Linux guest reports only that a signal killed it (exit code\n"
     "4294967295): when hcsbctl had forwarded signal N to it, that is taken "
     "as\n"
     "the cause (128+N); otherwise the exit status is 255, with the message\n"
     "\"killed by a signal (the guest does not say which)\".  hcsbctl's own\n"
     "failures use 1-4 as listed in 'hcsbctl --help'.\n"},
    {"exec",
     "Usage: hcsbctl exec ID [-t] [-i] [-e K=V]... [-w DIR] [--user U] [--] "
     "CMD [ARG]...\n"
     "\n"
     "Runs CMD in container ID (an OCI process built from the options; the\n"
     "working directory defaults to /) and exits with its exit code.  The\n"
     "options are those of 'hcsbctl run --help'; --user sets the OCI user "
     "name.\n"},
    {"create",
     "Usage: hcsbctl create ID --spec FILE [--layer DIR]... [--scratch DIR]\n"
     "\n"
     "Creates container ID from the OCI runtime spec in FILE (schema 2.1\n"
     "settings).  Each --layer adds a read-only layer (guest path; the "
     "first is the top)\n"
     "combined at <bundle>/rootfs, which becomes the spec's root.path;\n"
     "--scratch sets the scratch directory (also the layers' writable "
     "part).\n"
     "\n"
     "  --layer-image IMG  (with --uvm) a layer as an ext4 image file "
     "(hcsb-mklayer\n"
     "                     makes one from a directory): each is hot-plugged\n"
     "                     into the VM as a VPMem device and mounted, base\n"
     "                     first; the overlay is made over their mounts.  The\n"
     "                     same image twice is mounted once.  'delete' "
     "releases\n"
     "                     them again, newest first.\n"},
    {"start",
     "Usage: hcsbctl start [-a] ID\n"
     "\n"
     "Sends Start, then starts the init process from the spec with its stdout\n"
     "and stderr relayed to ours.  On its own, hcsbctl stays attached until\n"
     "init exits and exits with its exit code.  In a script, init runs in the\n"
     "background (its output interleaves with what follows) and the line\n"
     "succeeds at once; 'wait ID' later collects the end.\n"
     "\n"
     "  -a, --attach   stay attached in a script too\n"},
    {"kill",
     "Usage: hcsbctl kill ID [--pid PID] [-s SIGNAL]\n"
     "\n"
     "Sends SIGNAL (default TERM; a name like TERM or SIGKILL, or a number) "
     "to\n"
     "the init process started by 'start' in this session, or to PID.  Exits "
     "1\n"
     "when the process is not running.\n"},
    {"wait",
     "Usage: hcsbctl wait [--json] ID\n"
     "\n"
     "Waits for the container's exit notification and prints how it ended,\n"
     "e.g. \"ID exited: GracefulExit (Result 0x00000000, init exit code 0)\".\n"
     "Exit status 0 when it exited, 3 when the connection was lost first, 4 "
     "on\n"
     "--timeout.  --json: "
     "{\"Id\",\"End\":\"Exited\",\"Type\",\"Result\",\"InitExitCode\"}.\n"},
    {"ps",
     "Usage: hcsbctl ps [--json] ID\n"
     "\n"
     "The container's processes (GetProperties ProcessList) as a table, or "
     "with\n"
     "--json as {\"ProcessList\":[{\"ProcessId\",\"KernelTime100ns\",\n"
     "\"UserTime100ns\",\"MemoryCommitBytes\"}]}, plus \"ImageName\" (the "
     "IMAGE\n"
     "column) for the processes the guest names: a Linux GCS reports only\n"
     "ProcessId, so the image is \"-\" and the other values are 0.\n"},
    {"stats",
     "Usage: hcsbctl stats [--json] ID\n"
     "\n"
     "The container's statistics (GetProperties Statistics), one \"Group.Key "
     "value\"\n"
     "per line, or with --json as "
     "{\"Cpu\":{\"TotalNs\",\"UserNs\",\"KernelNs\",\n"
     "\"ThrottledPeriods\",\"ThrottledTimeNs\"},\"Memory\":{...},\"Pids\":{...}"
     ",\n"
     "\"Blkio\":{...}} with the groups the guest reported.  Then the whole\n"
     "LCOWMetrics, typed, with containerd's cgroup v1 names: lines such as\n"
     "cpu.usage.per_cpu.0, memory.total_rss, memory.usage.limit,\n"
     "memory_oom_control.oom_kill, blkio.io_service_bytes_recursive Read 8:0 "
     "N,\n"
     "hugetlb.2MB.usage, network.eth0.rx_bytes, or the JSON member "
     "\"Metrics\":{\"cpu\":\n"
     "{\"usage\":{\"total\",\"kernel\",\"user\",\"per_cpu\":[...]},...},"
     "\"memory\":{...},...}.\n"},
    {"shutdown",
     "Usage: hcsbctl shutdown ID [--force]\n"
     "\n"
     "Asks the container to stop (ShutdownGraceful: SIGTERM to init), or with\n"
     "--force ShutdownForced (SIGKILL).  Does not wait: use 'wait ID'.\n"},
    {"delete",
     "Usage: hcsbctl delete ID\n"
     "\n"
     "Removes the guest's state of a stopped container "
     "(DeleteContainerState),\n"
     "after removing what 'create' in this session added for it (layers,\n"
     "mounts, adapters), newest first; with --uvm, then its layer images'\n"
     "VPMem mounts.\n"},
    {"modify",
     "Usage: hcsbctl modify --json FILE\n"
     "\n"
     "Sends the ModificationRequest JSON object in FILE (- for stdin) as\n"
     "ModifySettings to the UVM, e.g.\n"
     "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Add\","
     "\"Settings\":{...}}\n"},
    {"stacks",
     "Usage: hcsbctl stacks\n\nPrints the guest's DumpStacks text.\n"},
    {"caps",
     "Usage: hcsbctl caps [--json]\n"
     "\n"
     "The negotiated protocol version, the guest OS and its capabilities.\n"
     "--json: {\"Version\",\"Os\",\"Capabilities\":{...}} with the "
     "capabilities under\n"
     "their protocol names.\n"},
    {"script",
     "Usage: hcsbctl script [--keep-going] [FILE|-]\n"
     "\n"
     "Runs one command per line from FILE (default: stdin) over one "
     "connection,\n"
     "so the guest keeps its state between them.  Lines use the commands'\n"
     "syntax with shell-like quoting ('...', \"...\", backslash) but no\n"
     "expansion; blank lines and # comments are skipped.  The first failing\n"
     "line stops the script after a message naming the line; with\n"
     "--keep-going every line runs and the first failure's status is the\n"
     "script's.  The message says which kind of status it is: a process's\n"
     "exit code (run, exec, start: \"the process exited with status 3\"), or\n"
     "one of hcsbctl's own (\"failed with exit status 3 (connection or\n"
     "transport failure)\", see 'hcsbctl --help').  run/exec relay stdio as\n"
     "usual (stdin only with -i, which is refused when the script itself is\n"
     "read from stdin).\n"
     "\n"
     "Example:\n"
     "  create c1 --spec config.json\n"
     "  start c1\n"
     "  exec c1 -- /bin/sh -c 'echo hello'\n"
     "  kill c1 -s TERM\n"
     "  wait c1\n"
     "  delete c1\n"},
};

void ctl_main_help(ctl_t *ctl) {
  ctl_out(ctl, main_help, sizeof(main_help) - 1);
}

int ctl_cmd_help(ctl_t *ctl, const char *cmd) {
  for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
    if (strcmp(helps[i].cmd, cmd) == 0) {
      ctl_out(ctl, helps[i].text, strlen(helps[i].text));
      return 0;
    }
  }
  return -1;
}

int ctl_usage_error(ctl_t *ctl, const char *cmd, const char *fmt, ...) {
  ctl_buf_t b = {0};
  va_list ap;
  va_start(ap, fmt);
  ctl_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  if (cmd)
    ctl_errorf(ctl, "%s: %s\nTry 'hcsbctl %s --help'.", cmd, b.data, cmd);
  else
    ctl_errorf(ctl, "%s\nTry 'hcsbctl --help'.", b.data);
  ctl_buf_free(&b);
  return CTL_EXIT_USAGE;
}
