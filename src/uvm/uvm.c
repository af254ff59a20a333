/* The utility VM (include/hcsbridge/uvm.h).  The header is the contract;
 * the implementation lands in the following commits. */
#include <errno.h>
#include <string.h>

#include <hcsbridge/uvm.h>

void hcsb_uvm_options_init(hcsb_uvm_options_t *o) {
  memset(o, 0, sizeof *o);
  o->accel = "tcg";
  o->memory_mb = 256;
  o->cpus = 1;
  o->vpmem_slots = 8;
  o->vpmem_max_mb = 8192;
  o->boot_timeout_ms = 120000;
  o->qmp_timeout_ms = 10000;
  o->vpmem_timeout_ms = 60000;
  o->shutdown_timeout_ms = 10000;
  o->log_level = HCSB_LOG_WARN;
}

int hcsb_uvm_start(uv_loop_t *loop, const hcsb_uvm_options_t *opts,
                   hcsb_uvm_start_cb cb, void *data, hcsb_uvm_t **out) {
  (void)loop, (void)opts, (void)cb, (void)data, (void)out;
  return -ENOSYS;
}

hcsb_conn_t *hcsb_uvm_conn(const hcsb_uvm_t *uvm) {
  return NULL;
}
uv_loop_t *hcsb_uvm_loop(const hcsb_uvm_t *uvm) {
  return NULL;
}
void hcsb_uvm_set_data(hcsb_uvm_t *uvm, void *data) {}
void *hcsb_uvm_get_data(const hcsb_uvm_t *uvm) {
  return NULL;
}
int hcsb_uvm_pid(const hcsb_uvm_t *uvm) {
  return 0;
}
int hcsb_uvm_backend_pid(const hcsb_uvm_t *uvm) {
  return 0;
}
const char *hcsb_uvm_run_dir(const hcsb_uvm_t *uvm) {
  return "";
}
const char *hcsb_uvm_address(const hcsb_uvm_t *uvm) {
  return "";
}
hcsb_uvm_state_t hcsb_uvm_state(const hcsb_uvm_t *uvm) {
  return HCSB_UVM_STOPPED;
}
void hcsb_uvm_set_exit_cb(hcsb_uvm_t *uvm, hcsb_uvm_exit_cb cb, void *data) {}
int hcsb_uvm_exit_info(const hcsb_uvm_t *uvm, hcsb_uvm_exit_t *out) {
  return -EBUSY;
}
void hcsb_uvm_close(hcsb_uvm_t *uvm, hcsb_close_cb cb, void *data) {}

int hcsb_uvm_add_vpmem(hcsb_uvm_t *uvm, const char *image_path,
                       const hcsb_uvm_vpmem_opts_t *opts, hcsb_uvm_vpmem_cb cb,
                       void *data) {
  return -ENOSYS;
}
int hcsb_uvm_remove_vpmem(hcsb_uvm_t *uvm, uint32_t device_number,
                          hcsb_done_cb cb, void *data) {
  return -ENOSYS;
}
size_t hcsb_uvm_vpmem_devices(const hcsb_uvm_t *uvm,
                              const hcsb_uvm_vpmem_t **out) {
  if (out != NULL) *out = NULL;
  return 0;
}
int hcsb_uvm_create_container(hcsb_uvm_t *uvm, const hcsb_call_opts_t *opts,
                              const hcsb_container_config_t *config,
                              const hcsb_uvm_layer_t *layers, size_t nlayers,
                              hcsb_container_cb cb, void *data,
                              hcsb_container_t **out) {
  return -ENOSYS;
}
int hcsb_uvm_delete_container(hcsb_uvm_t *uvm, const hcsb_call_opts_t *opts,
                              const char *container_id, hcsb_done_cb cb,
                              void *data) {
  return -ENOSYS;
}
