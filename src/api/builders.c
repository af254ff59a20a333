/* ModificationRequest builders, one per resource type the Linux GCS knows
 * (protocol.md §8).  Field names and omitempty behaviour follow the guest's
 * Go structs; request types a resource does not accept are refused here,
 * where the mistake is cheap to explain, rather than by the guest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"

#define RT_ADD (1u << HCSB_REQUEST_ADD)
#define RT_REMOVE (1u << HCSB_REQUEST_REMOVE)
#define RT_UPDATE (1u << HCSB_REQUEST_UPDATE)
#define RT_ANY (RT_ADD | RT_REMOVE | RT_UPDATE)

static const char *rt_name(hcsb_request_type_t rt) {
  switch (rt) {
    case HCSB_REQUEST_ADD:
      return "Add";
    case HCSB_REQUEST_REMOVE:
      return "Remove";
    case HCSB_REQUEST_UPDATE:
      return "Update";
    case HCSB_REQUEST_PRE_ADD:
      return "PreAdd";
  }
  return NULL;
}

static int begin(hcsb__jw_t *w, hcsb_request_type_t rt, unsigned allowed,
                 const char *resource, char **out) {
  if (out == NULL) return -EINVAL;
  *out = NULL;
  if ((unsigned)rt > HCSB_REQUEST_PRE_ADD || !((1u << rt) & allowed))
    return -EINVAL;
  hcsb__jw_init(w);
  hcsb__jw_obj(w);
  hcsb__jw_key(w, "ResourceType");
  hcsb__jw_str(w, resource);
  hcsb__jw_key(w, "RequestType");
  hcsb__jw_str(w, rt_name(rt));
  return 0;
}

static int end(hcsb__jw_t *w, char **out) {
  hcsb__jw_obj_end(w);
  return hcsb__jw_finish(w, out);
}

static int is_object(const char *text) {
  return text != NULL &&
         hcsb__json_validate(text, strlen(text), HCSB__JSON_MAX_DEPTH) ==
             (int)json_type_object;
}

static void put_strs(hcsb__jw_t *w, const char *key, const char *const *v,
                     size_t n) {
  size_t i;

  if (n == 0) return;
  hcsb__jw_key(w, key);
  hcsb__jw_arr(w);
  for (i = 0; i < n; i++) hcsb__jw_str(w, v[i]);
  hcsb__jw_arr_end(w);
}

static int strs_ok(const char *const *v, size_t n) {
  size_t i;

  if (n != 0 && v == NULL) return 0;
  for (i = 0; i < n; i++)
    if (v[i] == NULL) return 0;
  return 1;
}

static int verity_ok(const hcsb_verity_info_t *v) {
  return v == NULL ||
         (v->root_digest != NULL && v->root_digest[0] != '\0' &&
          v->hash_algorithm != NULL && v->hash_algorithm[0] != '\0' &&
          v->data_block_size != 0 &&
          (v->hash_block_size == 0 ||
           v->hash_block_size == v->data_block_size) &&
          v->hash_offset_bytes % v->data_block_size == 0 &&
          v->hash_offset_bytes <= INT64_MAX);
}

/* DeviceVerityInfo, in the guest's field order; every field omitempty. */
static void put_verity(hcsb__jw_t *w, const hcsb_verity_info_t *v) {
  if (v == NULL) return;
  hcsb__jw_key(w, "VerityInfo");
  hcsb__jw_obj(w);
  hcsb__jw_ku64(w, "Ext4SizeInBytes", v->hash_offset_bytes);
  hcsb__jw_ku64(w, "Version", v->version);
  hcsb__jw_kstr(w, "Algorithm", v->hash_algorithm);
  hcsb__jw_kbool(w, "SuperBlock", v->super_block);
  hcsb__jw_kstr(w, "RootDigest", v->root_digest);
  hcsb__jw_kstr(w, "Salt", v->salt);
  hcsb__jw_ku64(w, "BlockSize", v->data_block_size);
  hcsb__jw_obj_end(w);
}

int hcsb_modify_mapped_virtual_disk_verity(hcsb_request_type_t rt,
                                           const hcsb_mapped_virtual_disk_t *d,
                                           const hcsb_verity_info_t *verity,
                                           char **json_out) {
  hcsb__jw_t w;
  int r;

  if (d == NULL || d->controller > 3 || !strs_ok(d->options, d->noptions) ||
      !verity_ok(verity))
    return -EINVAL;
  r = begin(&w, rt, RT_ADD | RT_REMOVE, "MappedVirtualDisk", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_kstr(&w, "MountPath", d->mount_path);
  /* Controller and Lun always: 0 is a real address, not "unset". */
  hcsb__jw_key(&w, "Lun");
  hcsb__jw_u64(&w, d->lun);
  hcsb__jw_key(&w, "Controller");
  hcsb__jw_u64(&w, d->controller);
  hcsb__jw_ku64(&w, "Partition", d->partition);
  hcsb__jw_kbool(&w, "ReadOnly", d->read_only);
  hcsb__jw_kbool(&w, "Encrypted", d->encrypted);
  put_strs(&w, "Options", d->options, d->noptions);
  put_verity(&w, verity);
  hcsb__jw_kbool(&w, "BlockDev", d->block_dev);
  hcsb__jw_kbool(&w, "EnsureFilesystem", d->ensure_filesystem);
  hcsb__jw_kstr(&w, "Filesystem", d->filesystem);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_mapped_virtual_disk(hcsb_request_type_t rt,
                                    const hcsb_mapped_virtual_disk_t *d,
                                    char **json_out) {
  return hcsb_modify_mapped_virtual_disk_verity(rt, d, NULL, json_out);
}

int hcsb_modify_scsi_device(hcsb_request_type_t rt, uint8_t controller,
                            uint8_t lun, char **json_out) {
  hcsb__jw_t w;
  int r;

  if (controller > 3) return -EINVAL;
  r = begin(&w, rt, RT_REMOVE, "SCSIDevice", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_key(&w, "Controller");
  hcsb__jw_u64(&w, controller);
  hcsb__jw_key(&w, "Lun");
  hcsb__jw_u64(&w, lun);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_mapped_directory(hcsb_request_type_t rt,
                                 const hcsb_mapped_directory_t *d,
                                 char **json_out) {
  hcsb__jw_t w;
  int r;

  if (d == NULL || d->mount_path == NULL || d->mount_path[0] == '\0')
    return -EINVAL;
  r = begin(&w, rt, RT_ADD | RT_REMOVE, "MappedDirectory", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_kstr(&w, "MountPath", d->mount_path);
  hcsb__jw_key(&w, "Port");
  hcsb__jw_u64(&w, d->port != 0 ? d->port : HCSB_PORT_PLAN9);
  hcsb__jw_kstr(&w, "ShareName", d->share_name);
  hcsb__jw_kbool(&w, "ReadOnly", d->read_only);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_vpmem_device_verity(hcsb_request_type_t rt,
                                    const hcsb_vpmem_device_t *d,
                                    const hcsb_verity_info_t *verity,
                                    char **json_out) {
  hcsb__jw_t w;
  int r;

  if (d == NULL || !verity_ok(verity)) return -EINVAL;
  r = begin(&w, rt, RT_ADD | RT_REMOVE, "VPMemDevice", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_key(&w, "DeviceNumber");
  hcsb__jw_u64(&w, d->device_number);
  hcsb__jw_kstr(&w, "MountPath", d->mount_path);
  if (d->has_mapping) {
    hcsb__jw_key(&w, "MappingInfo");
    hcsb__jw_obj(&w);
    hcsb__jw_key(&w, "DeviceOffsetInBytes");
    hcsb__jw_u64(&w, d->device_offset_bytes);
    hcsb__jw_key(&w, "DeviceSizeInBytes");
    hcsb__jw_u64(&w, d->device_size_bytes);
    hcsb__jw_obj_end(&w);
  }
  put_verity(&w, verity);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_vpmem_device(hcsb_request_type_t rt,
                             const hcsb_vpmem_device_t *d, char **json_out) {
  return hcsb_modify_vpmem_device_verity(rt, d, NULL, json_out);
}

int hcsb_modify_combined_layers(hcsb_request_type_t rt,
                                const hcsb_combined_layers_t *l,
                                char **json_out) {
  hcsb__jw_t w;
  size_t i;
  int r;

  if (l == NULL || l->container_root_path == NULL ||
      l->container_root_path[0] == '\0' || !strs_ok(l->layer_paths, l->nlayers))
    return -EINVAL;
  r = begin(&w, rt, RT_ADD | RT_REMOVE, "CombinedLayers", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_kstr(&w, "ContainerID", l->container_id);
  hcsb__jw_kstr(&w, "ContainerRootPath", l->container_root_path);
  if (l->nlayers != 0) {
    hcsb__jw_key(&w, "Layers");
    hcsb__jw_arr(&w);
    for (i = 0; i < l->nlayers; i++) {
      hcsb__jw_obj(&w);
      hcsb__jw_key(&w, "Path");
      hcsb__jw_str(&w, l->layer_paths[i]);
      hcsb__jw_obj_end(&w);
    }
    hcsb__jw_arr_end(&w);
  }
  hcsb__jw_kstr(&w, "ScratchPath", l->scratch_path);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

static void put_adapter_main(hcsb__jw_t *w, const hcsb_network_adapter_t *a) {
  size_t i;

  hcsb__jw_kstr(w, "DNSSuffix", a->dns_suffix);
  hcsb__jw_kstr(w, "DNSServerList", a->dns_server_list);
  hcsb__jw_ku64(w, "EncapOverhead", a->encap_overhead);
  hcsb__jw_kbool(w, "VPCIAssigned", a->vpci_assigned);
  if (a->nip_configs != 0) {
    hcsb__jw_key(w, "IPConfigs");
    hcsb__jw_arr(w);
    for (i = 0; i < a->nip_configs; i++) {
      hcsb__jw_obj(w);
      hcsb__jw_kstr(w, "IPAddress", a->ip_configs[i].ip_address);
      hcsb__jw_ku64(w, "PrefixLength", a->ip_configs[i].prefix_length);
      hcsb__jw_obj_end(w);
    }
    hcsb__jw_arr_end(w);
  }
  if (a->nroutes != 0) {
    hcsb__jw_key(w, "Routes");
    hcsb__jw_arr(w);
    for (i = 0; i < a->nroutes; i++) {
      hcsb__jw_obj(w);
      hcsb__jw_kstr(w, "NextHop", a->routes[i].next_hop);
      hcsb__jw_kstr(w, "DestinationPrefix", a->routes[i].destination_prefix);
      hcsb__jw_ku64(w, "Metric", a->routes[i].metric);
      hcsb__jw_obj_end(w);
    }
    hcsb__jw_arr_end(w);
  }
  hcsb__jw_kbool(w, "PolicyBasedRouting", a->policy_based_routing);
  hcsb__jw_kbool(w, "EnableLowMetric", a->enable_low_metric);
}

static void put_adapter_v0_11(hcsb__jw_t *w, const hcsb_network_adapter_t *a) {
  hcsb__jw_kstr(w, "IPAddress", a->ip_address);
  hcsb__jw_ku64(w, "PrefixLength", a->prefix_length);
  hcsb__jw_kstr(w, "GatewayAddress", a->gateway_address);
  hcsb__jw_kstr(w, "IPv6Address", a->ipv6_address);
  hcsb__jw_ku64(w, "IPv6PrefixLength", a->ipv6_prefix_length);
  hcsb__jw_kstr(w, "IPv6GatewayAddress", a->ipv6_gateway_address);
  hcsb__jw_kstr(w, "DNSSuffix", a->dns_suffix);
  hcsb__jw_kstr(w, "DNSServerList", a->dns_server_list);
  hcsb__jw_kbool(w, "EnableLowMetric", a->enable_low_metric);
  hcsb__jw_ku64(w, "EncapOverhead", a->encap_overhead);
  hcsb__jw_kbool(w, "VPCIAssigned", a->vpci_assigned);
}

static int has(const char *s) {
  return s != NULL && s[0] != '\0';
}

/* Fields only the other shape has: the guest would drop them without a
 * word, so the caller hears about it here. */
static int adapter_fields_fit(const hcsb_network_adapter_t *a) {
  if (a->shape == HCSB_ADAPTER_SHAPE_MAIN)
    return !has(a->ip_address) && a->prefix_length == 0 &&
           !has(a->gateway_address) && !has(a->ipv6_address) &&
           a->ipv6_prefix_length == 0 && !has(a->ipv6_gateway_address);
  return a->shape == HCSB_ADAPTER_SHAPE_V0_11 && a->nip_configs == 0 &&
         a->nroutes == 0 && !a->policy_based_routing;
}

int hcsb_modify_network_adapter(hcsb_request_type_t rt,
                                const hcsb_network_adapter_t *a,
                                char **json_out) {
  hcsb__jw_t w;
  int r;

  if (a == NULL || a->namespace_id == NULL || a->id == NULL ||
      (a->nip_configs != 0 && a->ip_configs == NULL) ||
      (a->nroutes != 0 && a->routes == NULL) || !adapter_fields_fit(a))
    return -EINVAL;
  r = begin(&w, rt, RT_ADD | RT_REMOVE, "Network", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_kstr(&w, "NamespaceID", a->namespace_id);
  hcsb__jw_kstr(&w, "ID", a->id);
  hcsb__jw_kstr(&w, "MacAddress", a->mac_address);
  if (a->shape == HCSB_ADAPTER_SHAPE_MAIN)
    put_adapter_main(&w, a);
  else
    put_adapter_v0_11(&w, a);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_vpci_device(hcsb_request_type_t rt, const char *vmbus_guid,
                            char **json_out) {
  hcsb__jw_t w;
  int r;

  if (!hcsb__guid_valid(vmbus_guid)) return -EINVAL;
  r = begin(&w, rt, RT_ADD, "VPCIDevice", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_kstr(&w, "VMBusGUID", vmbus_guid);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_container_constraints(hcsb_request_type_t rt,
                                      const char *linux_resources_json,
                                      const char *windows_json,
                                      char **json_out) {
  hcsb__jw_t w;
  int r;

  if ((linux_resources_json != NULL && !is_object(linux_resources_json)) ||
      (windows_json != NULL && !is_object(windows_json)) ||
      (linux_resources_json == NULL && windows_json == NULL))
    return -EINVAL;
  r = begin(&w, rt, RT_ANY, "ContainerConstraints", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  if (windows_json != NULL) {
    hcsb__jw_key(&w, "Windows");
    hcsb__jw_raw(&w, windows_json, strlen(windows_json));
  }
  if (linux_resources_json != NULL) {
    hcsb__jw_key(&w, "Linux");
    hcsb__jw_raw(&w, linux_resources_json, strlen(linux_resources_json));
  }
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_security_policy(hcsb_request_type_t rt,
                                const hcsb_security_policy_t *p,
                                char **json_out) {
  hcsb__jw_t w;
  int r;

  if (p == NULL) return -EINVAL;
  r = begin(&w, rt, RT_ANY, "SecurityPolicy", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_kstr(&w, "EnforcerType", p->enforcer_type);
  hcsb__jw_kstr(&w, "EncodedSecurityPolicy", p->encoded_security_policy);
  hcsb__jw_kstr(&w, "EncodedUVMReference", p->encoded_uvm_reference);
  hcsb__jw_kstr(&w, "EncodedUVMHashEnvelopeReference",
                p->encoded_uvm_hash_envelope_reference);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_security_policy_fragment(hcsb_request_type_t rt,
                                         const char *fragment_base64,
                                         const char *media_type,
                                         char **json_out) {
  hcsb__jw_t w;
  int r;

  if (fragment_base64 == NULL || fragment_base64[0] == '\0') return -EINVAL;
  r = begin(&w, rt, RT_ANY, "SecurityPolicyFragment", json_out);
  if (r != 0) return r;
  hcsb__jw_key(&w, "Settings");
  hcsb__jw_obj(&w);
  hcsb__jw_kstr(&w, "Fragment", fragment_base64);
  hcsb__jw_kstr(&w, "MediaType", media_type);
  hcsb__jw_obj_end(&w);
  return end(&w, json_out);
}

int hcsb_modify_pod_cgroup_memory_limit(hcsb_request_type_t rt,
                                        char **json_out) {
  hcsb__jw_t w;
  int r = begin(&w, rt, RT_UPDATE, "PodCgroupMemoryLimit", json_out);

  if (r != 0) return r;
  return end(&w, json_out);
}
