/* A container's root filesystem: from the snapshot mounts containerd hands
 * to Create, to read-only ext4 layer images the utility VM attaches as
 * VPMem devices and the guest combines with an overlay (CombinedLayers,
 * the scratch in guest memory).
 *
 * 1. The plan (pure): which host directories are the layers, base first.
 *      overlay  {type overlay, options [lowerdir=TOP:...:BASE, upperdir=U]}
 *               -> one layer per lowerdir (committed snapshots: immutable,
 *               cached), plus U as the top layer when it is not empty (an
 *               active snapshot someone wrote into: built per container)
 *      bind     {type bind, source S, options [rbind, rw|ro]} (native
 *               snapshotter, or an overlay snapshot without parents)
 *               -> one layer S; cached only when read-only ("ro": a view
 *               of a committed snapshot)
 *      none     no mounts (`ctr run --rootfs DIR`): the spec's root.path,
 *               relative to the bundle, as one layer, built per container
 *    Writes go to the scratch in the guest: they never reach the host's
 *    snapshot (an rw snapshot is copied in, not shared).
 * 2. The images (rootfs-image.c): a cached layer's image is
 *    <cache>/<key>.img, where the key hashes the directory's path with its
 *    identity (device, inode, change time), so a snapshot that is removed
 *    and made again gets a new image; <key>.key holds the whole key
 *    (checked on every use: a hash collision rebuilds).  Shims share the
 *    cache: one builds a missing image under an flock on <key>.lock while
 *    the others wait for it; a shim killed mid-build leaves only a
 *    temporary file.  Images of per-container layers go to
 *    <cache>/tmp/ and are the caller's to remove.  The images are made by
 *    an external maker, `hcsb-mklayer DIR IMAGE` by default (bindir; the
 *    uvm's tool: mkfs.ext4 -d, no journal, a multiple of 2 MiB), run as a
 *    child process in a process group of its own so the loop never blocks
 *    and a cancel stops it whole.
 *    Nothing evicts cached images: remove <cache> while no shim runs to
 *    reclaim the space. */
#ifndef HCSB_SHIM_ROOTFS_H
#define HCSB_SHIM_ROOTFS_H

#include <stddef.h>

#include <uv.h>

/* At most this many layers per container (one VPMem device each). */
#define HCSB__ROOTFS_MAX_LAYERS 64u
/* Longest host path handled. */
#define HCSB__ROOTFS_PATH_MAX 4096u

/* One mount of CreateTaskRequest.rootfs (containerd.types.Mount). */
typedef struct hcsb__mount_s {
  const char *type;
  const char *source;
  const char *target;
  const char *const *options;
  size_t noptions;
} hcsb__mount_t;

typedef struct hcsb__layer_s {
  char *dir;     /* host directory */
  int cacheable; /* immutable: its image may be shared through the cache */
} hcsb__layer_t;

typedef struct hcsb__rootfs_plan_s {
  size_t nlayers;
  hcsb__layer_t layers[HCSB__ROOTFS_MAX_LAYERS]; /* base first */
} hcsb__rootfs_plan_t;

/* Fills `plan` from the mounts (see above).  `bundle` and `spec_root` (the
 * spec's root.path; may be NULL) are used only when there are no mounts.
 * Returns 0; -EINVAL with a static message in *err for what cannot be a
 * layer (more than one mount, an unknown type, no lowerdir, a relative or
 * dotted path); other mount options are not looked at;
 * -E2BIG for too many layers; -ENAMETOOLONG; -ENOMEM.  The plan is empty
 * on failure.  Does no I/O except looking into upperdir. */
int hcsb__rootfs_plan(const hcsb__mount_t *mounts, size_t nmounts,
                      const char *bundle, const char *spec_root,
                      hcsb__rootfs_plan_t *plan, const char **err);
void hcsb__rootfs_plan_free(hcsb__rootfs_plan_t *plan);

/* The cache key of a directory (its path and identity) and the file name
 * stem it maps to (16 hex digits).  Returns 0, or the stat() error. */
int hcsb__layer_key(const char *dir, char *key, size_t keylen, char stem[17]);

/* Builds (or finds) the image of one layer.  `cb` runs once, later, from
 * the loop: status 0 with the image's path (valid during the call), or a
 * negative errno with a message (the maker's stderr's last line, say).
 * A cached layer's image stays in the cache; a per-container one
 * (cacheable 0) is a new file under <cache>/tmp/ that the caller removes.
 * hcsb__layer_image_cancel() ends a pending build: `cb` runs with
 * -ECANCELED (later, not inside the cancel) and a maker still running is
 * killed.  `maker` NULL means bindir's hcsb-mklayer (HCSB_MKLAYER in the
 * environment overrides it).  Returns 0, or -EINVAL,
 * -ENOMEM, -ENAMETOOLONG, or the error of creating <cache> (cb never runs
 * then). */
typedef struct hcsb__layer_req_s hcsb__layer_req_t;
typedef void (*hcsb__layer_cb)(void *data, int status, const char *image,
                               const char *msg);
int hcsb__layer_image(uv_loop_t *loop, const char *cache_dir,
                      const hcsb__layer_t *layer, const char *maker,
                      hcsb__layer_cb cb, void *data, hcsb__layer_req_t **out);
void hcsb__layer_image_cancel(hcsb__layer_req_t *req);

#endif
