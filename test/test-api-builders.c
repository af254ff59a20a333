/* ModificationRequest builders and the ProcessConfig mapping, byte for
 * byte (no I/O). */
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"
#include "runner.h"

#define EXPECT(call, text) \
  do {                     \
    char *out_ = NULL;     \
    CHECK_EQ((call), 0);   \
    CHECK_STR(out_, text); \
    hcsb_free(out_);       \
  } while (0)
#define OUT &out_

static void test_mapped_virtual_disk(void) {
  const char *const opts[] = {"noatime", "ro\"x"};
  hcsb_mapped_virtual_disk_t d;
  char *out = NULL;

  memset(&d, 0, sizeof(d));
  d.mount_path = "/run/mounts/m0";
  d.controller = 2;
  d.lun = 7;
  d.partition = 3;
  d.read_only = 1;
  d.encrypted = 1;
  d.options = opts;
  d.noptions = 2;
  d.block_dev = 1;
  d.ensure_filesystem = 1;
  d.filesystem = "ext4";
  EXPECT(
      hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, &d, OUT),
      "{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":\"Add\","
      "\"Settings\":{\"MountPath\":\"/run/mounts/"
      "m0\",\"Lun\":7,\"Controller\":2,"
      "\"Partition\":3,\"ReadOnly\":true,\"Encrypted\":true,\"Options\":"
      "[\"noatime\",\"ro\\\"x\"],\"BlockDev\":true,\"EnsureFilesystem\":true,"
      "\"Filesystem\":\"ext4\"}}");
  memset(&d, 0, sizeof(d));
  EXPECT(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_REMOVE, &d, OUT),
         "{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":\"Remove\","
         "\"Settings\":{\"Lun\":0,\"Controller\":0}}");
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_UPDATE, &d, &out),
           -EINVAL);
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_PRE_ADD, &d, &out),
           -EINVAL);
  CHECK_EQ(hcsb_modify_mapped_virtual_disk((hcsb_request_type_t)9, &d, &out),
           -EINVAL);
  d.controller = 4;
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, &d, &out),
           -EINVAL);
  d.controller = 0;
  d.noptions = 1;
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, &d, &out),
           -EINVAL);
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, NULL, &out),
           -EINVAL);
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, &d, NULL),
           -EINVAL);
  CHECK(out == NULL);
}

static void test_other_resources(void) {
  hcsb_mapped_directory_t dir = {"/mnt/share", 0, "share1", 1};
  hcsb_vpmem_device_t vp = {3, "/run/layers/p3-0-1000", 1, 0, 4096};
  const char *layers[] = {"/l/0", "/l/1"};
  hcsb_combined_layers_t cl = {"c1", "/run/gcs/c/c1/rootfs", layers, 2,
                               "/run/gcs/c/c1/scratch"};
  hcsb_security_policy_t pol = {"rego", "cG9saWN5", "cmVm", NULL};
  char *out = NULL;

  EXPECT(hcsb_modify_scsi_device(HCSB_REQUEST_REMOVE, 1, 5, OUT),
         "{\"ResourceType\":\"SCSIDevice\",\"RequestType\":\"Remove\","
         "\"Settings\":"
         "{\"Controller\":1,\"Lun\":5}}");
  CHECK_EQ(hcsb_modify_scsi_device(HCSB_REQUEST_ADD, 1, 5, &out), -EINVAL);
  EXPECT(hcsb_modify_mapped_directory(HCSB_REQUEST_ADD, &dir, OUT),
         "{\"ResourceType\":\"MappedDirectory\",\"RequestType\":\"Add\","
         "\"Settings\":"
         "{\"MountPath\":\"/mnt/share\",\"Port\":564,\"ShareName\":\"share1\","
         "\"ReadOnly\":true}}");
  EXPECT(
      hcsb_modify_vpmem_device(HCSB_REQUEST_ADD, &vp, OUT),
      "{\"ResourceType\":\"VPMemDevice\",\"RequestType\":\"Add\",\"Settings\":"
      "{\"DeviceNumber\":3,\"MountPath\":\"/run/layers/p3-0-1000\","
      "\"MappingInfo\":{\"DeviceOffsetInBytes\":0,\"DeviceSizeInBytes\":4096}}"
      "}");
  EXPECT(
      hcsb_modify_combined_layers(HCSB_REQUEST_ADD, &cl, OUT),
      "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Add\","
      "\"Settings\":"
      "{\"ContainerID\":\"c1\",\"ContainerRootPath\":\"/run/gcs/c/c1/rootfs\","
      "\"Layers\":[{\"Path\":\"/l/0\"},{\"Path\":\"/l/1\"}],\"ScratchPath\":"
      "\"/run/gcs/c/c1/scratch\"}}");
  cl.container_root_path = NULL;
  CHECK_EQ(hcsb_modify_combined_layers(HCSB_REQUEST_REMOVE, &cl, &out),
           -EINVAL);
  EXPECT(
      hcsb_modify_vpci_device(HCSB_REQUEST_ADD,
                              "12345678-aaaa-bbbb-cccc-0123456789ab", OUT),
      "{\"ResourceType\":\"VPCIDevice\",\"RequestType\":\"Add\",\"Settings\":"
      "{\"VMBusGUID\":\"12345678-aaaa-bbbb-cccc-0123456789ab\"}}");
  CHECK_EQ(hcsb_modify_vpci_device(HCSB_REQUEST_ADD, "nope", &out), -EINVAL);
  EXPECT(
      hcsb_modify_container_constraints(
          HCSB_REQUEST_UPDATE, "{\"memory\":{\"limit\":1048576}}", NULL, OUT),
      "{\"ResourceType\":\"ContainerConstraints\",\"RequestType\":\"Update\","
      "\"Settings\":{\"Linux\":{\"memory\":{\"limit\":1048576}}}}");
  CHECK_EQ(
      hcsb_modify_container_constraints(HCSB_REQUEST_UPDATE, "[1]", NULL, &out),
      -EINVAL);
  CHECK_EQ(
      hcsb_modify_container_constraints(HCSB_REQUEST_UPDATE, NULL, NULL, &out),
      -EINVAL);
  EXPECT(hcsb_modify_security_policy(HCSB_REQUEST_ADD, &pol, OUT),
         "{\"ResourceType\":\"SecurityPolicy\",\"RequestType\":\"Add\","
         "\"Settings\":"
         "{\"EnforcerType\":\"rego\",\"EncodedSecurityPolicy\":\"cG9saWN5\","
         "\"EncodedUVMReference\":\"cmVm\"}}");
  EXPECT(hcsb_modify_security_policy_fragment(HCSB_REQUEST_ADD,
                                              "ZnJhZw==", NULL, OUT),
         "{\"ResourceType\":\"SecurityPolicyFragment\",\"RequestType\":\"Add\","
         "\"Settings\":{\"Fragment\":\"ZnJhZw==\"}}");
  EXPECT(
      hcsb_modify_pod_cgroup_memory_limit(HCSB_REQUEST_UPDATE, OUT),
      "{\"ResourceType\":\"PodCgroupMemoryLimit\",\"RequestType\":\"Update\"}");
  CHECK_EQ(hcsb_modify_pod_cgroup_memory_limit(HCSB_REQUEST_ADD, &out),
           -EINVAL);
}

static void test_network_adapter_shapes(void) {
  hcsb_ip_config_t ips[] = {{"10.0.0.5", 24}, {"fd00::5", 64}};
  hcsb_route_t routes[] = {{"10.0.0.1", "0.0.0.0/0", 0}};
  hcsb_network_adapter_t a;
  char *out = NULL;

  /* The default is what a v0.11.8 guest decodes: the flat shape. */
  memset(&a, 0, sizeof(a));
  a.namespace_id = "ns";
  a.id = "nic";
  a.mac_address = "00-15-5D-01-02-03";
  a.dns_suffix = "a.example,b.example";
  a.dns_server_list = "10.0.0.2";
  a.encap_overhead = 50;
  a.enable_low_metric = 1;
  a.vpci_assigned = 1;
  a.ip_address = "10.0.0.5";
  a.prefix_length = 24;
  a.gateway_address = "10.0.0.1";
  a.ipv6_address = "fd00::5";
  a.ipv6_prefix_length = 64;
  a.ipv6_gateway_address = "fd00::1";
  EXPECT(hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, OUT),
         "{\"ResourceType\":\"Network\",\"RequestType\":\"Add\",\"Settings\":"
         "{\"NamespaceID\":\"ns\",\"ID\":\"nic\",\"MacAddress\":"
         "\"00-15-5D-01-02-03\",\"IPAddress\":\"10.0.0.5\",\"PrefixLength\":24,"
         "\"GatewayAddress\":\"10.0.0.1\",\"IPv6Address\":\"fd00::5\","
         "\"IPv6PrefixLength\":64,\"IPv6GatewayAddress\":\"fd00::1\","
         "\"DNSSuffix\":\"a.example,b.example\",\"DNSServerList\":"
         "\"10.0.0.2\",\"EnableLowMetric\":true,\"EncapOverhead\":50,"
         "\"VPCIAssigned\":true}}");
  CHECK_EQ(HCSB_ADAPTER_SHAPE_V0_11, 0);
  /* main's fields would be dropped by that guest: refused instead. */
  a.ip_configs = ips;
  a.nip_configs = 2;
  CHECK_EQ(hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &out), -EINVAL);
  a.nip_configs = 0;
  a.routes = routes;
  a.nroutes = 1;
  CHECK_EQ(hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &out), -EINVAL);
  a.nroutes = 0;
  a.policy_based_routing = 1;
  CHECK_EQ(hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &out), -EINVAL);
  a.policy_based_routing = 0;

  /* main's shape only when asked for, and then without the flat fields. */
  a.shape = HCSB_ADAPTER_SHAPE_MAIN;
  a.nip_configs = 2;
  a.nroutes = 1;
  CHECK_EQ(hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &out), -EINVAL);
  a.ip_address = a.gateway_address = NULL;
  a.ipv6_address = a.ipv6_gateway_address = NULL;
  a.prefix_length = 0;
  CHECK_EQ(hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &out), -EINVAL);
  a.ipv6_prefix_length = 0;
  EXPECT(
      hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, OUT),
      "{\"ResourceType\":\"Network\",\"RequestType\":\"Add\",\"Settings\":"
      "{\"NamespaceID\":\"ns\",\"ID\":\"nic\",\"MacAddress\":\"00-15-5D-01-02-"
      "03\","
      "\"DNSSuffix\":\"a.example,b.example\",\"DNSServerList\":\"10.0.0.2\","
      "\"EncapOverhead\":50,\"VPCIAssigned\":true,\"IPConfigs\":[{"
      "\"IPAddress\":"
      "\"10.0.0.5\",\"PrefixLength\":24},{\"IPAddress\":\"fd00::5\","
      "\"PrefixLength\":64}],"
      "\"Routes\":[{\"NextHop\":\"10.0.0.1\",\"DestinationPrefix\":\"0.0.0.0/"
      "0\"}],"
      "\"EnableLowMetric\":true}}");
  a.shape = 2;
  CHECK_EQ(hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &out), -EINVAL);
  a.shape = HCSB_ADAPTER_SHAPE_MAIN;
  a.namespace_id = NULL;
  CHECK_EQ(hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &out), -EINVAL);
  CHECK(out == NULL);
}

/* DeviceVerityInfo: the v0.11.8 guest's field names and JSON types (numbers
 * for Ext4SizeInBytes, Version and BlockSize, a bool for SuperBlock), on
 * both device kinds and on Remove. */
static void test_verity_info(void) {
  hcsb_verity_info_t v = {"3f4e", "a1b2", "sha256", 4096, 4096, 1048576, 1, 1};
  hcsb_mapped_virtual_disk_t d;
  hcsb_vpmem_device_t vp = {2, "/run/layers/p2-0-1000", 1, 0, 4096};
  char *out = NULL;

  memset(&d, 0, sizeof(d));
  d.mount_path = "/run/layers/m1";
  d.lun = 1;
  d.read_only = 1;
  EXPECT(hcsb_modify_mapped_virtual_disk_verity(HCSB_REQUEST_ADD, &d, &v, OUT),
         "{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":\"Add\","
         "\"Settings\":{\"MountPath\":\"/run/layers/m1\",\"Lun\":1,"
         "\"Controller\":0,\"ReadOnly\":true,\"VerityInfo\":{"
         "\"Ext4SizeInBytes\":1048576,\"Version\":1,\"Algorithm\":\"sha256\","
         "\"SuperBlock\":true,\"RootDigest\":\"3f4e\",\"Salt\":\"a1b2\","
         "\"BlockSize\":4096}}}");
  EXPECT(hcsb_modify_vpmem_device_verity(HCSB_REQUEST_REMOVE, &vp, &v, OUT),
         "{\"ResourceType\":\"VPMemDevice\",\"RequestType\":\"Remove\","
         "\"Settings\":{\"DeviceNumber\":2,\"MountPath\":"
         "\"/run/layers/p2-0-1000\",\"MappingInfo\":{\"DeviceOffsetInBytes\":0,"
         "\"DeviceSizeInBytes\":4096},\"VerityInfo\":{"
         "\"Ext4SizeInBytes\":1048576,\"Version\":1,\"Algorithm\":\"sha256\","
         "\"SuperBlock\":true,\"RootDigest\":\"3f4e\",\"Salt\":\"a1b2\","
         "\"BlockSize\":4096}}}");
  /* No salt, no superblock, hash block size left to the data's: omitted
   * the way Go's omitempty omits them. */
  v.salt = NULL;
  v.super_block = 0;
  v.hash_block_size = 0;
  v.version = 0;
  EXPECT(hcsb_modify_vpmem_device_verity(HCSB_REQUEST_ADD, &vp, &v, OUT),
         "{\"ResourceType\":\"VPMemDevice\",\"RequestType\":\"Add\","
         "\"Settings\":{\"DeviceNumber\":2,\"MountPath\":"
         "\"/run/layers/p2-0-1000\",\"MappingInfo\":{\"DeviceOffsetInBytes\":0,"
         "\"DeviceSizeInBytes\":4096},\"VerityInfo\":{"
         "\"Ext4SizeInBytes\":1048576,\"Algorithm\":\"sha256\","
         "\"RootDigest\":\"3f4e\",\"BlockSize\":4096}}}");
  /* NULL verity: byte for byte the plain builder. */
  {
    char *plain = NULL, *with = NULL;
    CHECK_EQ(hcsb_modify_vpmem_device(HCSB_REQUEST_ADD, &vp, &plain), 0);
    CHECK_EQ(
        hcsb_modify_vpmem_device_verity(HCSB_REQUEST_ADD, &vp, NULL, &with), 0);
    CHECK_STR(with, plain);
    hcsb_free(plain);
    hcsb_free(with);
  }
  /* What the guest's single BlockSize and data-sized hash offset cannot
   * express, and what would crash it. */
  v.hash_block_size = 512;
  CHECK_EQ(hcsb_modify_vpmem_device_verity(HCSB_REQUEST_ADD, &vp, &v, &out),
           -EINVAL);
  v.hash_block_size = 4096;
  v.hash_offset_bytes = 1048576 + 512;
  CHECK_EQ(
      hcsb_modify_mapped_virtual_disk_verity(HCSB_REQUEST_ADD, &d, &v, &out),
      -EINVAL);
  v.hash_offset_bytes = 1048576;
  v.data_block_size = 0;
  CHECK_EQ(hcsb_modify_vpmem_device_verity(HCSB_REQUEST_ADD, &vp, &v, &out),
           -EINVAL);
  v.data_block_size = 4096;
  v.root_digest = "";
  CHECK_EQ(hcsb_modify_vpmem_device_verity(HCSB_REQUEST_ADD, &vp, &v, &out),
           -EINVAL);
  v.root_digest = "3f4e";
  v.hash_algorithm = NULL;
  CHECK_EQ(
      hcsb_modify_mapped_virtual_disk_verity(HCSB_REQUEST_ADD, &d, &v, &out),
      -EINVAL);
  CHECK(out == NULL);
}

static void params(const hcsb_process_config_t *c, int in_container,
                   const char *expect, int expect_tty) {
  char *out = NULL;
  int tty = 5;

  CHECK_EQ(hcsb__process_params(c, in_container, &out, &tty), 0);
  CHECK_STR(out, expect);
  CHECK_EQ(tty, expect_tty);
  free(out);
}

static void test_process_parameters(void) {
  const char *args[] = {"/bin/ls", "-l"};
  hcsb_process_config_t c;
  char *out = NULL;
  int tty;

  /* UVM: CommandArgs preferred over CommandLine. */
  memset(&c, 0, sizeof(c));
  c.command_args = args;
  c.ncommand_args = 2;
  c.command_line = "ignored";
  c.emulate_console = 1;
  c.create_stdin_pipe = 1;
  c.create_stdout_pipe = 1;
  params(&c, 0,
         "{\"CommandArgs\":[\"/bin/ls\",\"-l\"],\"EmulateConsole\":true,"
         "\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true}",
         1);
  /* In a container, forced into the UVM. */
  c.create_in_utility_vm = 1;
  c.emulate_console = 0;
  params(&c, 1,
         "{\"CommandArgs\":[\"/bin/ls\",\"-l\"],\"CreateStdInPipe\":true,"
         "\"CreateStdOutPipe\":true,\"CreateInUtilityVM\":true}",
         0);
  /* Container exec from a command line: split as the guest would. */
  memset(&c, 0, sizeof(c));
  c.command_line = "  sh -c 'echo \"a  b\"' x\\ y \"q\\\"uote\" ";
  params(&c, 1,
         "{\"OciProcess\":{\"terminal\":false,\"args\":[\"sh\",\"-c\","
         "\"echo \\\"a  b\\\"\",\"x y\",\"q\\\"uote\"],\"cwd\":\"/\"}}",
         0);
  /* Caller's OCI process, verbatim; its terminal forbids stderr. */
  memset(&c, 0, sizeof(c));
  c.oci_process_json = "{\"args\":[\"top\"],\"terminal\":true,\"cwd\":\"/\"}";
  c.create_stdout_pipe = 1;
  params(&c, 1,
         "{\"CreateStdOutPipe\":true,\"OciProcess\":{\"args\":[\"top\"],"
         "\"terminal\":true,\"cwd\":\"/\"}}",
         1);
  c.create_stderr_pipe = 1;
  CHECK_EQ(hcsb__process_params(&c, 1, &out, &tty), -EINVAL);
  c.oci_process_json = "[]";
  CHECK_EQ(hcsb__process_params(&c, 1, &out, &tty), -EINVAL);
  c.oci_process_json = "{bad";
  CHECK_EQ(hcsb__process_params(&c, 1, &out, &tty), -EINVAL);
  /* Init: pipes only, terminal unknown (the spec decides). */
  memset(&c, 0, sizeof(c));
  c.create_stderr_pipe = 1;
  params(&c, 1, "{\"CreateStdErrPipe\":true}", -1);
  /* Unbalanced quotes. */
  memset(&c, 0, sizeof(c));
  c.command_line = "echo 'oops";
  CHECK_EQ(hcsb__process_params(&c, 1, &out, &tty), -EINVAL);
  CHECK(out == NULL);
}

static void test_generated_ids(void) {
  char a[65], b[65];

  hcsb__container_id_generate(a);
  hcsb__container_id_generate(b);
  CHECK_EQ(strlen(a), 64);
  CHECK_EQ(strspn(a, "0123456789abcdef"), 64);
  CHECK(strcmp(a, b) != 0);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(mapped_virtual_disk),    TEST_ENTRY(other_resources),
    TEST_ENTRY(network_adapter_shapes), TEST_ENTRY(verity_info),
    TEST_ENTRY(process_parameters),     TEST_ENTRY(generated_ids),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
