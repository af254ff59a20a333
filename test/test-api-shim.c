/* What a containerd shim ported from hcsshim needs first, against the
 * emulator (which decodes as a v0.11.8 guest) and a scripted peer (the
 * exact requests): network adapter shapes, dm-verity metadata, span
 * contexts, signal validation, per-container OS, notification hook, and
 * the documented close / loss / timeout semantics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"
#include "test-api-peer.h"
#include "test-api-util.h"

/* ------------------------------------------------------------------------ */
/* Emulator helpers */

typedef struct stacks_s {
  int done, status;
  char *text;
} stacks_t;

static void stacks_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      const char *stacks, size_t len) {
  stacks_t *s = data;
  (void)gerr;
  s->done = 1;
  s->status = status;
  s->text = strndup(stacks != NULL ? stacks : "", len);
}

/* The emulator's DumpStacks text: its resource records. */
static char *dump(api_guest_t *g) {
  stacks_t s = {0, 0, NULL};
  CHECK_EQ(hcsb_conn_dump_stacks(g->conn, NULL, stacks_cb, &s), 0);
  RUN_UNTIL(g->loop, s.done);
  CHECK_EQ(s.status, 0);
  return s.text;
}

/* Sends one ModificationRequest text; returns the status (HRESULT in *hr). */
static int modify(api_guest_t *g, const char *json, uint32_t *hr) {
  api_done_t d = {0};
  CHECK_EQ(hcsb_conn_modify(g->conn, NULL, json, api_done, &d), 0);
  RUN_UNTIL(g->loop, d.done);
  if (hr != NULL) *hr = d.hresult;
  return d.status;
}

/* A builder's result: `rc` must be 0; sends *json, frees it, returns the
 * status.  (*json is read only after the builder ran.) */
static int modify_built(api_guest_t *g, int rc, char **json) {
  int status;
  CHECK_EQ(rc, 0);
  status = modify(g, *json, NULL);
  hcsb_free(*json);
  *json = NULL;
  return status;
}

/* The record line of `key` in the dump ("" when absent), for messages. */
static const char *line_of(const char *text, const char *key, char *buf,
                           size_t len) {
  const char *p = strstr(text, key), *e;
  buf[0] = '\0';
  if (p == NULL) return buf;
  e = strchr(p, '\n');
  snprintf(buf, len, "%.*s", (int)(e != NULL ? e - p : (long)strlen(p)), p);
  return buf;
}

/* ------------------------------------------------------------------------ */
/* 1. Network adapter shapes, as a v0.11.8 guest takes them */

static void test_adapter_shapes_on_v0_11_guest(void) {
  hcsb_ip_config_t ips[] = {{"10.1.0.6", 24}};
  hcsb_network_adapter_t a;
  uv_loop_t loop;
  api_guest_t g;
  uint32_t hr = 0;
  char *json, *text, line[256];

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);

  /* The default shape: the guest gets the address. */
  memset(&a, 0, sizeof(a));
  a.namespace_id = "ns-1";
  a.id = "nic-flat";
  a.ip_address = "10.1.0.5";
  a.prefix_length = 24;
  a.gateway_address = "10.1.0.1";
  a.dns_server_list = "10.1.0.2";
  CHECK_EQ(modify_built(&g, hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a,
                                                        &json),
                        &json),
           0);
  /* main's shape is accepted by that guest and comes up without one. */
  memset(&a, 0, sizeof(a));
  a.shape = HCSB_ADAPTER_SHAPE_MAIN;
  a.namespace_id = "ns-1";
  a.id = "nic-main";
  a.ip_configs = ips;
  a.nip_configs = 1;
  CHECK_EQ(modify_built(&g, hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a,
                                                        &json),
                        &json),
           0);
  text = dump(&g);
  CHECK_STR(line_of(text, "Network nic-flat", line, sizeof line),
            "Network nic-flat ns=ns-1 ip=10.1.0.5/24 gw=10.1.0.1 "
            "dns=10.1.0.2");
  CHECK_STR(line_of(text, "Network nic-main", line, sizeof line),
            "Network nic-main ns=ns-1 ip=none");
  free(text);

  /* Wrong JSON types are the guest's decode error, as Go reports them. */
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"Network\",\"RequestType\":\"Add\","
                  "\"Settings\":{\"NamespaceID\":\"ns-1\",\"ID\":\"nic-bad\","
                  "\"IPAddress\":\"10.1.0.9\",\"PrefixLength\":300}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0xC037010Du);
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"Network\",\"RequestType\":\"Add\","
                  "\"Settings\":{\"NamespaceID\":\"ns-1\",\"ID\":\"nic-bad\","
                  "\"EnableLowMetric\":\"yes\"}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0xC037010Du);
  /* Remove by namespace and ID drops the record. */
  memset(&a, 0, sizeof(a));
  a.namespace_id = "ns-1";
  a.id = "nic-flat";
  CHECK_EQ(modify_built(&g, hcsb_modify_network_adapter(HCSB_REQUEST_REMOVE,
                                                        &a, &json),
                        &json),
           0);
  text = dump(&g);
  CHECK(strstr(text, "nic-flat") == NULL);
  CHECK(strstr(text, "nic-bad") == NULL);
  CHECK(strstr(text, "Network nic-main") != NULL);
  free(text);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* 2. dm-verity metadata on SCSI and VPMem devices */

static void test_verity_reaches_guest(void) {
  hcsb_verity_info_t v = {"5d41402abc4b2a76", "00ff", "sha256", 4096, 0,
                          8388608, 1, 1};
  hcsb_mapped_virtual_disk_t d;
  hcsb_vpmem_device_t vp = {1, "/run/layers/p1-0-8192", 1, 0, 8192};
  const hcsb_mapped_virtual_disk_t *disks;
  uv_loop_t loop;
  api_guest_t g;
  uint32_t hr = 0;
  char *json, *text, line[256];

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  memset(&d, 0, sizeof(d));
  d.mount_path = "/run/layers/m3";
  d.lun = 3;
  d.read_only = 1;
  CHECK_EQ(modify_built(&g, hcsb_modify_mapped_virtual_disk_verity(
                                HCSB_REQUEST_ADD, &d, &v, &json),
                        &json),
           0);
  v.super_block = 0;
  v.salt = NULL;
  CHECK_EQ(modify_built(&g, hcsb_modify_vpmem_device_verity(HCSB_REQUEST_ADD,
                                                            &vp, &v, &json),
                        &json),
           0);
  /* A disk with VerityInfo is still recorded by the library. */
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, &disks), 1);
  CHECK_EQ(disks[0].lun, 3);
  text = dump(&g);
  CHECK_STR(line_of(text, "MappedVirtualDisk /run/layers/m3", line,
                    sizeof line),
            "MappedVirtualDisk /run/layers/m3 verity=5d41402abc4b2a76 "
            "alg=sha256 salt=00ff version=1 block=4096 data=8388608 "
            "superblock");
  CHECK_STR(line_of(text, "VPMemDevice /run/layers/p1-0-8192", line,
                    sizeof line),
            "VPMemDevice /run/layers/p1-0-8192 verity=5d41402abc4b2a76 "
            "alg=sha256 salt=- version=1 block=4096 data=8388608");
  free(text);

  /* The guest's types: a BlockSize sent as a string is its decode error;
   * a zero BlockSize fails the mount. */
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"VPMemDevice\",\"RequestType\":\"Add\","
                  "\"Settings\":{\"DeviceNumber\":2,\"MountPath\":\"/p2\","
                  "\"VerityInfo\":{\"RootDigest\":\"aa\",\"BlockSize\":"
                  "\"4096\"}}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0xC037010Du);
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"VPMemDevice\",\"RequestType\":\"Add\","
                  "\"Settings\":{\"DeviceNumber\":2,\"MountPath\":\"/p2\","
                  "\"VerityInfo\":{\"RootDigest\":\"aa\"}}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0x80004005u);
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":"
                  "\"Add\",\"Settings\":{\"MountPath\":\"/m9\",\"Lun\":9,"
                  "\"VerityInfo\":{\"SuperBlock\":1,\"BlockSize\":4096}}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0xC037010Du);

  /* Remove with the same metadata unmounts. */
  CHECK_EQ(modify_built(&g, hcsb_modify_mapped_virtual_disk_verity(
                                HCSB_REQUEST_REMOVE, &d, &v, &json),
                        &json),
           0);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, NULL), 0);
  text = dump(&g);
  CHECK(strstr(text, "/run/layers/m3") == NULL);
  CHECK(strstr(text, "/p2") == NULL);
  CHECK(strstr(text, "VPMemDevice /run/layers/p1-0-8192") != NULL);
  free(text);
  api_close(&g);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(adapter_shapes_on_v0_11_guest),
    TEST_ENTRY(verity_reaches_guest),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
