/* containerd-shim-hcsb-v1 — the default utility VM image, built on first
 * use.
 *
 * The configuration's kernel and initrd default to image_dir/vmlinuz and
 * image_dir/initrd.img (shim/conf.h), which `make install` does not create:
 * building them takes Debian's cloud kernel (downloaded once by
 * hcsb-mkuvm into its cache) and a minute or more.  So the first VM that
 * needs them runs `mkuvm -q -o image_dir` (the configured hcsb-mkuvm),
 * under an flock(1) on image_dir.lock so that concurrent shims build it
 * once: into a temporary directory beside image_dir, renamed into place
 * when complete, so a half-built image is never seen.  Running
 * `hcsb-mkuvm -o IMAGE_DIR` ahead of time (as root) avoids the wait.
 *
 * An image configured explicitly (kernel or initrd set in shim.conf) is
 * never built: missing, it is an error. */
#ifndef HCSB_SHIM_IMAGE_H
#define HCSB_SHIM_IMAGE_H

#include <uv.h>

#include "shim/conf.h"

typedef void (*hcsb__shim_image_cb)(void *data, int status);

/* Makes sure cfg->kernel and cfg->initrd can be read, building the
 * default image as above when they are the defaults and missing.
 * `cb(data, status)` runs exactly once, later, from the loop:
 *   0        both files are there
 *   -ENOENT  missing, and not the defaults (nothing is built)
 *   -ECHILD  the build failed (mkuvm's exit status and last output lines
 *            are in the shim's log)
 *   or uv_spawn's error (-ENOENT: no /bin/sh).
 * Returns 0, or -ENOMEM (cb will not run).  `cfg` must stay valid until
 * cb. */
int hcsb__shim_image_ensure(uv_loop_t *loop, const hcsb__shim_config_t *cfg,
                            hcsb__shim_image_cb cb, void *data);

#endif /* HCSB_SHIM_IMAGE_H */
