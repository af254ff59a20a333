/* containerd-shim-hcsb-v1: the containerd v2 runtime shim over hcsbridge
 * (cmd.h has the actions, args.h the command line). */
#include <stdio.h>
#include <string.h>

#include <hcsbridge/common.h>

#include "shim/args.h"
#include "shim/cmd.h"

static void usage(FILE *f) {
  fputs(
      "usage: containerd-shim-hcsb-v1 -namespace NS -id ID "
      "-address ADDR [-publish-binary P] [-bundle DIR] [-debug] "
      "start|delete\n"
      "       containerd-shim-hcsb-v1 -v\n"
      "containerd starts this shim for runtime io.containerd.hcsb.v1; "
      "it runs each task in a utility VM.\n"
      "Configuration: $HCSB_SHIM_CONFIG, else " HCSB_SHIM_CONFIG_PATH "\n",
      f);
}

int main(int argc, char **argv) {
  hcsb__shim_args_t a;
  char err[256];

  if (hcsb__shim_args_parse(argc, argv, &a, err, sizeof(err)) < 0) {
    fprintf(stderr, "containerd-shim-hcsb-v1: %s\n", err);
    usage(stderr);
    return 2;
  }
  switch (a.action) {
    case HCSB__SHIM_VERSION:
      printf("%s:\n  Version:  %s\n  Library:  hcsbridge %s\n\n", argv[0],
             HCSB_VERSION_STRING, hcsb_version_string());
      return 0;
    case HCSB__SHIM_START:
      return hcsb__shim_cmd_start(&a, argc, argv);
    case HCSB__SHIM_DELETE:
      return hcsb__shim_cmd_delete(&a);
    case HCSB__SHIM_SERVE:
      return hcsb__shim_cmd_serve(&a);
    default:
      usage(stderr);
      return 2;
  }
}
