/* hcsbridge — the utility VM: a Linux guest in QEMU, driven as hcsshim's
 * internal/uvm drives one (CreateLCOW, Start, AddVPMem, CreateContainer,
 * Close).
 *
 * hcsb_uvm_start() boots QEMU with a kernel and initrd (hcsb-mkuvm makes
 * them), serves the guest's virtio-vsock with hcsb-vsockd, talks to QEMU
 * over QMP, waits for the guest program (hcsb-guest, or hcsshim's GCS) to
 * dial the bridge, negotiates, and hands back the hcsb_conn_t on which the
 * whole Container/Process API of conn.h works.  Read-only images (container
 * layers) are hot-plugged as virtio-pmem devices and mounted in the guest;
 * hcsb_uvm_create_container() does that for a container's layers.
 *
 * What runs, per VM:
 *   qemu-system-x86_64   q35, memory in a shared memfd, no network, the
 *                        serial console and QMP on socketpairs to this
 *                        process, one PCIe root port per VPMem slot
 *   hcsb-vsockd          the vhost-user vsock backend; the guest's
 *                        connections to host port P arrive on the Unix
 *                        socket <run dir>/vsock_P (Firecracker's hybrid
 *                        vsock), where the library listens
 * Both are started with uv_spawn through hcsb-uvm-exec, which makes the
 * kernel kill them (SIGKILL) when the thread that started them dies, so
 * they never outlive their owner, even one killed with SIGKILL.  Start the
 * VM from the thread that runs the loop for the VM's whole life (Linux's
 * parent-death signal follows the thread, not the process).  Each is also
 * killed by PID on every exit path of this API.
 *
 * Same rules as conn.h: everything runs on one libuv loop, from one
 * thread; every asynchronous function returns 0 and its callback runs
 * exactly once, later, from the loop, or returns a negative errno and the
 * callback never runs; pointers handed to callbacks are valid during the
 * callback only; closing is allowed in every state and from inside every
 * callback.
 *
 * Statuses besides conn.h's: -EHOSTDOWN (QEMU exited: the VM is gone),
 * -ECHILD (a helper program could not be started or exited early; the log
 * says which and why), -ETIMEDOUT (a step's bound: boot, QMP command,
 * device node), -EPROTO (QEMU's monitor sent something unusable).
 */
#ifndef HCSBRIDGE_UVM_H
#define HCSBRIDGE_UVM_H

#include <hcsbridge/conn.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcsb_uvm_s hcsb_uvm_t;

/* ------------------------------------------------------------------------ */
/* Options */

/* One extra file for the guest's initramfs. */
typedef struct hcsb_uvm_file_s {
  const char *src;  /* host path, read when the VM starts */
  const char *dest; /* absolute guest path; NULL: /bin/NAME when `src` is
                       executable, /NAME otherwise */
} hcsb_uvm_file_t;

/* How hcsb_uvm_add_vpmem makes sure /dev/pmemN exists before it sends the
 * VPMem ModifySettings (a v0.11.8 GCS mounts at once and fails when the
 * node is not there yet). */
typedef enum hcsb_uvm_vpmem_wait_e {
  /* A UVM process (/bin/sh, from the guest's busybox) waits for the block
   * device and checks its size; works with any guest that runs UVM
   * processes.  The default. */
  HCSB_UVM_VPMEM_WAIT_PROCESS = 0,
  /* Send at once: for a guest that waits for the node itself. */
  HCSB_UVM_VPMEM_WAIT_NONE = 1
} hcsb_uvm_vpmem_wait_t;

typedef struct hcsb_uvm_options_s {
  /* The image.  `image_dir` is hcsb-mkuvm's output directory (its
   * `vmlinuz` and `initrd.img` are used); `kernel` and `initrd` override
   * it.  A kernel and an initrd are required. */
  const char *image_dir;
  const char *kernel;
  const char *initrd;
  /* Appended to "console=ttyS0 panic=-1 quiet" (NULL: nothing). */
  const char *kernel_args;
  /* Per-run changes without rebuilding the image: when `guest_cmd` or
   * `guest_files` are given, the library appends one uncompressed newc
   * cpio archive to a copy of the initrd (in the run directory) holding
   * /etc/uvm/guest-cmd ("PROGRAM ARGS", run by the image's init with
   * sh -c) and the files; later files replace earlier ones.  Files are
   * taken as they are: the ELF libraries a program needs are not added
   * (build them into the image with hcsb-mkuvm --guest-file). */
  const char *guest_cmd; /* NULL: the image's own */
  const hcsb_uvm_file_t *guest_files;
  size_t nguest_files;

  /* The machine. */
  const char *accel;     /* "tcg" (default) or "kvm" */
  uint32_t memory_mb;    /* guest RAM; default 256; 64..65536 */
  uint32_t cpus;         /* default 1; 1..64 */
  uint32_t vpmem_slots;  /* PCIe root ports kept free for VPMem hot-plug:
                            the most devices this VM can take; default 8,
                            0..32 (0 = default; see vpmem_max_mb) */
  uint32_t vpmem_max_mb; /* room for hot-plugged devices (QEMU's maxmem
                            minus memory_mb); default 8192 */
  hcsb_uvm_vpmem_wait_t vpmem_wait;

  /* Bounds, in ms unless named otherwise; 0 = the default. */
  uint32_t time_limit_s;        /* the VM is killed after this; 0 = none */
  uint32_t boot_timeout_ms;     /* start to negotiated bridge; default 120000 */
  uint32_t qmp_timeout_ms;      /* each QMP command; default 10000 */
  uint32_t vpmem_timeout_ms;    /* one hcsb_uvm_add_vpmem, hot-plug to mount;
                                   default 60000 */
  uint32_t shutdown_timeout_ms; /* close: the guest's own power-off, then
                                   QMP quit, each; default 10000 */

  /* Programs and places.  NULL = the default. */
  const char *qemu;   /* default "qemu-system-x86_64" from PATH */
  const char *vsockd; /* default: hcsb-vsockd in $HCSB_LIBEXECDIR when that
                         is set, else in the installed libexecdir */
  const char *exec_wrapper;     /* hcsb-uvm-exec, found the same way */
  const char *run_dir;          /* where the VM's private directory is made
                                   (mkdtemp hcsb-uvm.XXXXXX); default $TMPDIR,
                                   else /tmp.  The directory and everything in
                                   it is removed by hcsb_uvm_close. */
  const char *console_log;      /* the serial console is also written here
                                   (appended; never removed); NULL: not kept */
  const char *const *qemu_args; /* appended to QEMU's command line */
  size_t nqemu_args;

  /* The connection to the guest: timeouts, bring-up helpers, logging
   * (its `address` is ignored: the library sets it).  NULL: the defaults
   * of hcsb_conn_options_init, with this struct's log settings. */
  const hcsb_conn_options_t *conn_options;
  /* The VM's own log (QEMU, QMP, the helpers, each step's timing). */
  hcsb_log_cb log_cb;
  void *log_data;
  hcsb_log_level_t log_level;
} hcsb_uvm_options_t;

/* Fills `o` with the defaults above (zero, NULL and the named values). */
HCSB_EXTERN void hcsb_uvm_options_init(hcsb_uvm_options_t *o);

/* ------------------------------------------------------------------------ */
/* Life cycle */

/* `conn` is the negotiated connection (status 0), NULL otherwise.  On
 * failure the VM's processes have already been stopped, and
 * hcsb_uvm_exit_info() tells how QEMU ended when it ran.  Statuses: 0;
 * -ETIMEDOUT (boot_timeout_ms); -ECANCELED (hcsb_uvm_close first);
 * -EHOSTDOWN (QEMU exited while booting: a bad option, a kernel that
 * panicked, an init that failed; see the exit info and the log); -ECHILD
 * (hcsb-vsockd failed); -EPROTO (QMP); the errors of uv_spawn (-ENOENT:
 * QEMU or a helper not found) and of hcsb_conn_open's callback. */
typedef void (*hcsb_uvm_start_cb)(void *data, hcsb_uvm_t *uvm, int status,
                                  hcsb_conn_t *conn);

/* Creates the run directory, then (from the loop) writes the initrd copy
 * when asked for, listens on the bridge's hybrid-vsock socket, starts
 * hcsb-vsockd and QEMU, sets up QMP, and waits for the guest to dial and
 * negotiate.  The options and everything they point to are copied.
 * Returns -EINVAL (no kernel or initrd, an accelerator other than tcg/kvm,
 * a number out of range, a guest file without a source or with a relative
 * destination), -ENOENT (kernel, initrd, image_dir or a guest file
 * missing), -ENAMETOOLONG (the run directory's socket paths would not fit
 * a Unix socket address), -ENOMEM, or mkdtemp's error; `cb` never runs
 * then and *out is untouched.  Otherwise *out is the handle, valid until
 * the close callback of hcsb_uvm_close, which must be called in every
 * case (also after a failed start). */
HCSB_EXTERN int hcsb_uvm_start(uv_loop_t *loop, const hcsb_uvm_options_t *opts,
                               hcsb_uvm_start_cb cb, void *data,
                               hcsb_uvm_t **out);

/* The VM's connection: NULL before the start callback reported success,
 * once QEMU stopped, and once hcsb_uvm_close was called (a connection
 * handed to the start callback stays valid until the VM's close callback,
 * so its lost callback and pending operations still report).  It belongs to the
 * VM: do not close it yourself (hcsb_uvm_close does, after the guest was asked
 * to stop). Container and process handles opened on it are yours to close, as
 * with hcsb_conn_close. */
HCSB_EXTERN hcsb_conn_t *hcsb_uvm_conn(const hcsb_uvm_t *uvm);
HCSB_EXTERN uv_loop_t *hcsb_uvm_loop(const hcsb_uvm_t *uvm);
HCSB_EXTERN void hcsb_uvm_set_data(hcsb_uvm_t *uvm, void *data);
HCSB_EXTERN void *hcsb_uvm_get_data(const hcsb_uvm_t *uvm);
/* QEMU's and hcsb-vsockd's PIDs while they run; 0 before and after. */
HCSB_EXTERN int hcsb_uvm_pid(const hcsb_uvm_t *uvm);
HCSB_EXTERN int hcsb_uvm_backend_pid(const hcsb_uvm_t *uvm);
/* The VM's private directory ("" once closed) and the bridge's address in
 * it ("hvsock+fc://<run dir>/vsock"). */
HCSB_EXTERN const char *hcsb_uvm_run_dir(const hcsb_uvm_t *uvm);
HCSB_EXTERN const char *hcsb_uvm_address(const hcsb_uvm_t *uvm);

typedef enum hcsb_uvm_state_e {
  HCSB_UVM_STARTING = 0, /* until the start callback */
  HCSB_UVM_RUNNING = 1,  /* negotiated */
  HCSB_UVM_STOPPED = 2,  /* QEMU exited (or a start failed) */
  HCSB_UVM_CLOSING = 3   /* hcsb_uvm_close was called */
} hcsb_uvm_state_t;
HCSB_EXTERN hcsb_uvm_state_t hcsb_uvm_state(const hcsb_uvm_t *uvm);

/* How QEMU ended. */
typedef struct hcsb_uvm_exit_s {
  int64_t exit_status; /* QEMU's exit status (0: the guest powered off) */
  int term_signal;     /* the signal that killed QEMU, or 0 */
  int time_limit;      /* 1 when time_limit_s ran out and the library
                          killed it */
  /* The console's last lines (at most 4 KiB, ending at a line break when
   * one is there; NUL-terminated). */
  const char *console_tail;
  size_t console_tail_len;
  /* QEMU's last lines on stderr (at most 1 KiB; NUL-terminated): why it
   * refused to start, or what it said when it stopped. */
  const char *stderr_tail;
  size_t stderr_tail_len;
} hcsb_uvm_exit_t;

/* Runs once when QEMU exits while the VM is starting or running (the guest
 * powered off, crashed, was killed, or time_limit_s ran out), not once
 * hcsb_uvm_close was called.  It runs after the VM's pending operations
 * got their callbacks (-EHOSTDOWN); the connection's own lost callback
 * (hcsb_conn_set_lost_cb) reports the bridge's end on its own turn.  The
 * VM may be closed from inside.  NULL unregisters. */
typedef void (*hcsb_uvm_exit_cb)(void *data, hcsb_uvm_t *uvm,
                                 const hcsb_uvm_exit_t *exit);
HCSB_EXTERN void hcsb_uvm_set_exit_cb(hcsb_uvm_t *uvm, hcsb_uvm_exit_cb cb,
                                      void *data);
/* 0 and *out once QEMU has exited (the pointers in it stay valid until the
 * handle is freed); -EBUSY while it runs or before it started. */
HCSB_EXTERN int hcsb_uvm_exit_info(const hcsb_uvm_t *uvm, hcsb_uvm_exit_t *out);

/* Stops the VM and releases the handle, in any state:
 *   1. pending operations complete with -ECANCELED (a start too);
 *   2. a running guest is asked to stop: ShutdownGraceful on the UVM (a
 *      GCS answers by exiting, and the image's init powers off), and the
 *      connection is closed (hcsb_conn_close: open container and process
 *      handles stay valid and must still be closed);
 *   3. if QEMU has not exited after shutdown_timeout_ms, QMP quit; after
 *      as long again, SIGKILL by PID; hcsb-vsockd gets SIGTERM once QEMU
 *      is gone (SIGKILL if it lingers);
 *   4. the run directory is removed, then `cb` (may be NULL) runs.
 * A VM that never negotiated, or whose QEMU already exited, skips to the
 * kill.  The exit callback does not run once this was called.  A second
 * call does nothing. */
HCSB_EXTERN void hcsb_uvm_close(hcsb_uvm_t *uvm, hcsb_close_cb cb, void *data);

/* ------------------------------------------------------------------------ */
/* VPMem: read-only images as /dev/pmemN in the guest */

typedef struct hcsb_uvm_vpmem_opts_s {
  /* Where the guest mounts it; NULL: /run/layers/p<N> (hcsshim's).  */
  const char *mount_path;
  /* dm-verity metadata (hcsb_verity_info_t, conn.h); NULL: none.  The
   * hash tree is read from the same image. */
  const hcsb_verity_info_t *verity;
  /* MappingInfo: mount only [offset, offset + size) of the device (a
   * dm-linear target); has_mapping 0: the whole device. */
  int has_mapping;
  uint64_t device_offset_bytes;
  uint64_t device_size_bytes;
  /* The ModifySettings' ActivityId and timeout (NULL: defaults). */
  const hcsb_call_opts_t *call_opts;
} hcsb_uvm_vpmem_opts_t;

typedef struct hcsb_uvm_vpmem_s {
  uint32_t device_number; /* N of /dev/pmemN, the VPMem DeviceNumber */
  const char *mount_path; /* where the guest mounted it */
  uint32_t refs;          /* adds not yet matched by a remove */
} hcsb_uvm_vpmem_t;

typedef void (*hcsb_uvm_vpmem_cb)(void *data, hcsb_uvm_t *uvm, int status,
                                  const hcsb_guest_error_t *gerr,
                                  const hcsb_uvm_vpmem_t *dev);

/* Attaches the image at `image_path` read-only and has the guest mount it
 * (ext4, read-only), as hcsshim's AddVPMem:
 *   1. QMP object-add of a read-only memory-backend-file (align 2 MiB) and
 *      device_add of a virtio-pmem-pci device on a free root port;
 *   2. wait for /dev/pmemN in the guest (see hcsb_uvm_vpmem_wait_t);
 *   3. ModifySettings Add of the VPMemDevice (with MappingInfo/VerityInfo).
 * N is the guest's numbering: devices are plugged one at a time, in call
 * order, and the guest numbers hot-plugged pmem devices in that order.
 * The same image (same file: device, inode, size and mtime) is attached
 * once: a second add while it is mounted only counts a reference (the
 * options must then name the same mount path, or -EBUSY); an image whose
 * mount was removed is mounted again on its old device, without QMP.
 * QEMU 7.2 cannot unplug virtio-pmem devices, so a device, once plugged,
 * holds its slot and number for the VM's life.
 * Statuses: 0 with `dev`; HCSB_EGUEST (the guest's mount failed: a wrong
 * root hash, not ext4 ...; the device stays plugged); -ETIMEDOUT
 * (vpmem_timeout_ms; also when the node never appeared); -EIO (a node
 * appeared with another size than the image's: the numbering is off);
 * -EPROTO / QEMU's refusal (logged) as -EINVAL; -EHOSTDOWN; -ECANCELED
 * (closed first); the connection's statuses.
 * Returns -EINVAL (size not a multiple of 2 MiB: the log says by how much
 * to pad; bad mapping or verity options), -ENOENT / stat's error,
 * -ENOSPC (every slot used, or vpmem_max_mb exceeded), -ENOTCONN (the VM
 * is not running), -ENOMEM. */
HCSB_EXTERN int hcsb_uvm_add_vpmem(hcsb_uvm_t *uvm, const char *image_path,
                                   const hcsb_uvm_vpmem_opts_t *opts,
                                   hcsb_uvm_vpmem_cb cb, void *data);

/* Drops one reference of device `device_number`; the last one sends the
 * guest's VPMem Remove (unmount, and the dm targets go), as hcsshim's
 * RemoveVPMem.  The device itself stays plugged (see above).  Statuses:
 * 0; HCSB_EGUEST (the reference is dropped, the mount may remain);
 * -ECANCELED; -EHOSTDOWN; the connection's statuses.  Returns -ENOENT (no
 * such device, or no reference left), -ENOTCONN, -ENOMEM. */
HCSB_EXTERN int hcsb_uvm_remove_vpmem(hcsb_uvm_t *uvm, uint32_t device_number,
                                      hcsb_done_cb cb, void *data);

/* The devices plugged so far (mounted or not), in device-number order;
 * `out` may be NULL; returns the count.  The array is valid until the next
 * add, remove or close. */
HCSB_EXTERN size_t hcsb_uvm_vpmem_devices(const hcsb_uvm_t *uvm,
                                          const hcsb_uvm_vpmem_t **out);

/* ------------------------------------------------------------------------ */
/* Containers from layer images */

typedef struct hcsb_uvm_layer_s {
  const char *image_path;           /* an ext4 image, size a multiple of
                                       2 MiB (hcsb-mklayer makes one) */
  const hcsb_verity_info_t *verity; /* NULL: none */
} hcsb_uvm_layer_t;

/* hcsshim's CreateContainer on a UVM: each layer image is added with
 * hcsb_uvm_add_vpmem (in order, base first; shared images count a
 * reference), then hcsb_conn_create_container runs with `config` whose
 * `layers` are the images' mount paths, top first: the guest joins
 * CombinedLayers' paths into overlayfs' lowerdir in the order they come,
 * so the first one is the top layer.  `config` is copied; its layers,
 * mapped disks, mapped directories and endpoints must be empty (add what
 * else the container needs with hcsb_conn_modify_for_container).  A
 * failure removes what this call added, newest first, before `cb` runs.
 * The layers stay recorded under the container's ID for
 * hcsb_uvm_delete_container.
 * The container's handle comes with the callback (`c`): it is NULL when
 * the failure came before the create was sent (a VPMem add failed), and
 * otherwise must be closed, as with hcsb_conn_create_container, also
 * after a failure.  `out` (may be NULL) is set to NULL: the handle does
 * not exist yet when this returns.  Statuses: hcsb_conn_create_container's
 * and hcsb_uvm_add_vpmem's.  Returns -EINVAL (no layers, no ID in config:
 * give one, config resources set), -ENOTCONN, -EEXIST (the ID has layers
 * here already), what hcsb_uvm_add_vpmem returns for the first image,
 * -ENOMEM. */
HCSB_EXTERN int hcsb_uvm_create_container(hcsb_uvm_t *uvm,
                                          const hcsb_call_opts_t *opts,
                                          const hcsb_container_config_t *config,
                                          const hcsb_uvm_layer_t *layers,
                                          size_t nlayers, hcsb_container_cb cb,
                                          void *data, hcsb_container_t **out);

/* hcsb_conn_delete_container (the overlay and the other tracked resources,
 * then DeleteContainerState), then the layers' devices released, newest
 * first (hcsb_uvm_remove_vpmem).  When the delete fails the layers stay
 * (a later call retries).  Statuses: the first failure's.  Returns what
 * hcsb_conn_delete_container returns, -ENOTCONN. */
HCSB_EXTERN int hcsb_uvm_delete_container(hcsb_uvm_t *uvm,
                                          const hcsb_call_opts_t *opts,
                                          const char *container_id,
                                          hcsb_done_cb cb, void *data);

#ifdef __cplusplus
}
#endif
#endif /* HCSBRIDGE_UVM_H */
