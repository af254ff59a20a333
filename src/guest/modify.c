/* ModifySettings: decoded the way the GCS's UnmarshalContainerModifySettings
 * does it (unknown ResourceType = E_FAIL, badly typed Settings =
 * 0xC037010D), checked against the request types each resource accepts,
 * and recorded rather than acted on: there are no disks or overlays here.
 * The records show up in DumpStacks.  A Remove of something never added
 * succeeds, as in the guest (storage.UnmountPath is a no-op for a path
 * that does not exist), so a host may repeat a Remove it lost the answer
 * of.  What is mounted matters to DeleteContainerState, which removes the
 * bundle directory and fails while something is mounted below it.
 * A network adapter and a device's dm-verity metadata are decoded with the
 * v0.11.8 guest's own types (LCOWNetworkAdapter, DeviceVerityInfo), so a
 * record shows what that guest would have used: an adapter in main's shape
 * is accepted and comes up without an address, as it does there. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/act.h"
#include "guest/guest.h"

enum { RT_ADD = 1, RT_REMOVE = 2, RT_UPDATE = 4, RT_PREADD = 8, RT_ANY = 15 };

typedef struct rtype_s {
  const char *name;
  unsigned requests;   /* accepted RequestTypes */
  const char *go_name; /* the settings type in decode errors */
  const char *key;     /* the settings field that identifies the resource */
} rtype_t;

/* The 0.11 guest's catalogue (protocol.md §8).  PodCgroupMemoryLimit and the
 * Windows types are unknown to it. */
static const rtype_t rtypes[] = {
    {"MappedVirtualDisk", RT_ADD | RT_REMOVE, "MappedVirtualDiskV2",
     "MountPath"},
    {"SCSIDevice", RT_REMOVE, "SCSIDevice", NULL},
    {"MappedDirectory", RT_ADD | RT_REMOVE, "MappedDirectoryV2", "MountPath"},
    {"VPMemDevice", RT_ADD | RT_REMOVE, "MappedVPMemDeviceV2", "MountPath"},
    {"CombinedLayers", RT_ADD | RT_REMOVE, "CombinedLayersV2",
     "ContainerRootPath"},
    {"Network", RT_ADD | RT_REMOVE, "NetworkAdapterV2", "ID"},
    {"VPCIDevice", RT_ADD, "MappedVPCIDeviceV2", "VMBusGUID"},
    {"ContainerConstraints", RT_ANY, "ContainerConstraintsV2", NULL},
    {"SecurityPolicy", RT_ANY, "ConfidentialOptions", NULL},
    {"SecurityPolicyFragment", RT_ANY, "SecurityPolicyFragment", NULL},
};

/* "failed to unmarshal JSON in message "<body>": <what>" */
void hcsb__gmodify_fail(hcsb__greq_t *r, uint32_t hr, const char *fmt, ...) {
  size_t n = r->len < HCSB__G_MAX_ECHO ? r->len : HCSB__G_MAX_ECHO;
  char *what = NULL;
  va_list ap;
  int k;

  va_start(ap, fmt);
  k = vasprintf(&what, fmt, ap);
  va_end(ap);
  hcsb__greply_errf(
      r->g, &r->call, hr, "failed to unmarshal JSON in message \"%.*s%s\": %s",
      (int)n, r->body, n < r->len ? "..." : "", k < 0 ? "out of memory" : what);
  if (k >= 0) free(what);
}

static hcsb__gres_t *find_res(hcsb__guest_t *g, const char *cid,
                              const char *type, const char *key) {
  hcsb__gres_t *x;

  TAILQ_FOREACH(x, &g->resources, link) {
    if ((cid == NULL) != (x->cid == NULL)) continue;
    if (cid != NULL && strcmp(cid, x->cid) != 0) continue;
    if (strcmp(x->type, type) == 0 && strcmp(x->key, key) == 0) return x;
  }
  return NULL;
}

static void res_free_fields(hcsb__gres_t *x) {
  free(x->cid);
  free(x->type);
  free(x->key);
  free(x->detail);
  free(x);
}

static void res_free(hcsb__guest_t *g, hcsb__gres_t *x) {
  TAILQ_REMOVE(&g->resources, x, link);
  g->nresources--;
  res_free_fields(x);
}

/* Takes `detail` (malloc'd or NULL) in every case. */
static int res_add(hcsb__guest_t *g, const char *cid, const char *type,
                   const char *key, char *detail) {
  hcsb__gres_t *x = find_res(g, cid, type, key);

  if (x != NULL) { /* mounting the same thing twice: one record */
    free(detail);
    return 0;
  }
  if (g->nresources >= HCSB__G_MAX_RESOURCES) {
    free(detail);
    return -ENOSPC;
  }
  x = calloc(1, sizeof *x);
  if (x == NULL) {
    free(detail);
    return -ENOMEM;
  }
  x->detail = detail;
  x->cid = cid != NULL ? strdup(cid) : NULL;
  x->type = strdup(type);
  x->key = strdup(key);
  if ((cid != NULL && x->cid == NULL) || x->type == NULL || x->key == NULL) {
    res_free_fields(x);
    return -ENOMEM;
  }
  TAILQ_INSERT_TAIL(&g->resources, x, link);
  g->nresources++;
  return 0;
}

/* Appends to a malloc'd detail text; *s becomes NULL when memory ran out
 * (the record is then kept without it). */
static void detail_add(char **s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void detail_add(char **s, const char *fmt, ...) {
  char *more = NULL, *joined = NULL;
  va_list ap;
  int k;

  va_start(ap, fmt);
  k = vasprintf(&more, fmt, ap);
  va_end(ap);
  if (k < 0) more = NULL;
  if (more != NULL && asprintf(&joined, "%s%s%s", *s != NULL ? *s : "",
                               *s != NULL ? " " : "", more) < 0)
    joined = NULL;
  free(more);
  free(*s);
  *s = joined;
}

/* guestresource.LCOWNetworkAdapter as v0.11.8 has it.  IPConfigs and
 * Routes (main's shape) are unknown fields there: ignored. */
static int decode_adapter(hcsb__gdec_t *d, json_object *o, char **detail) {
  const char *ns = "", *ip = "", *gw = "", *ip6 = "", *gw6 = "";
  const char *mac = "", *suffix = "", *dns = "";
  uint8_t len = 0, len6 = 0;
  uint16_t encap = 0;
  int low = 0, vpci = 0;

  d->strct = "LCOWNetworkAdapter";
  if (hcsb__gdec_str(d, o, "NamespaceID", &ns) < 0 ||
      hcsb__gdec_str(d, o, "MacAddress", &mac) < 0 ||
      hcsb__gdec_str(d, o, "IPAddress", &ip) < 0 ||
      hcsb__gdec_u8(d, o, "PrefixLength", &len) < 0 ||
      hcsb__gdec_str(d, o, "GatewayAddress", &gw) < 0 ||
      hcsb__gdec_str(d, o, "IPv6Address", &ip6) < 0 ||
      hcsb__gdec_u8(d, o, "IPv6PrefixLength", &len6) < 0 ||
      hcsb__gdec_str(d, o, "IPv6GatewayAddress", &gw6) < 0 ||
      hcsb__gdec_str(d, o, "DNSSuffix", &suffix) < 0 ||
      hcsb__gdec_str(d, o, "DNSServerList", &dns) < 0 ||
      hcsb__gdec_bool(d, o, "EnableLowMetric", &low) < 0 ||
      hcsb__gdec_u16(d, o, "EncapOverhead", &encap) < 0 ||
      hcsb__gdec_bool(d, o, "VPCIAssigned", &vpci) < 0)
    return -1;
  detail_add(detail, "ns=%s", ns);
  if (ip[0] == '\0' && ip6[0] == '\0') detail_add(detail, "ip=none");
  if (ip[0] != '\0') detail_add(detail, "ip=%s/%u", ip, (unsigned)len);
  if (gw[0] != '\0') detail_add(detail, "gw=%s", gw);
  if (ip6[0] != '\0') detail_add(detail, "ip6=%s/%u", ip6, (unsigned)len6);
  if (gw6[0] != '\0') detail_add(detail, "gw6=%s", gw6);
  if (dns[0] != '\0') detail_add(detail, "dns=%s", dns);
  if (suffix[0] != '\0') detail_add(detail, "search=%s", suffix);
  if (mac[0] != '\0') detail_add(detail, "mac=%s", mac);
  if (encap != 0) detail_add(detail, "encap=%u", (unsigned)encap);
  if (low) detail_add(detail, "low-metric");
  if (vpci) detail_add(detail, "vpci");
  return 0;
}

/* guestresource.DeviceVerityInfo inside a MappedVirtualDisk or VPMemDevice.
 * *block_size is what the guest divides by when it builds the dm-verity
 * table; left alone when there is no VerityInfo. */
static int decode_verity(hcsb__gdec_t *d, json_object *settings, char **detail,
                         int64_t *block_size) {
  json_object *v = NULL;
  const char *root = "", *salt = "", *alg = "";
  int64_t size = 0, version = 0, block = 0;
  int sb = 0;

  if (hcsb__gdec_obj(d, settings, "VerityInfo", &v) < 0) return -1;
  if (v == NULL) return 0;
  d->strct = "DeviceVerityInfo";
  if (hcsb__gdec_i64(d, v, "Ext4SizeInBytes", "int64", &size) < 0 ||
      hcsb__gdec_i64(d, v, "Version", "int", &version) < 0 ||
      hcsb__gdec_str(d, v, "Algorithm", &alg) < 0 ||
      hcsb__gdec_bool(d, v, "SuperBlock", &sb) < 0 ||
      hcsb__gdec_str(d, v, "RootDigest", &root) < 0 ||
      hcsb__gdec_str(d, v, "Salt", &salt) < 0 ||
      hcsb__gdec_i64(d, v, "BlockSize", "int", &block) < 0)
    return -1;
  *block_size = block;
  detail_add(detail,
             "verity=%s alg=%s salt=%s version=%" PRId64 " block=%" PRId64
             " data=%" PRId64 "%s",
             root[0] != '\0' ? root : "-", alg[0] != '\0' ? alg : "-",
             salt[0] != '\0' ? salt : "-", version, block, size,
             sb ? " superblock" : "");
  return 0;
}

/* The typed part of the Settings the records keep.  -1 with d->err set
 * when a field has the wrong type (the whole request is 0xC037010D). */
static int decode_detail(hcsb__gdec_t *d, const rtype_t *t, json_object *s,
                         char **detail, int64_t *verity_block) {
  *verity_block = 1; /* no VerityInfo: nothing to divide */
  if (s == NULL) return 0;
  if (strcmp(t->name, "Network") == 0) return decode_adapter(d, s, detail);
  if (strcmp(t->name, "MappedVirtualDisk") == 0 ||
      strcmp(t->name, "VPMemDevice") == 0)
    return decode_verity(d, s, detail, verity_block);
  return 0;
}

void hcsb__gh_modify(hcsb__greq_t *r) {
  json_object *req, *settings = NULL;
  const char *rtype = "", *reqtype = "", *key = "";
  char scsi_key[32];
  const rtype_t *t = NULL;
  char *detail = NULL;
  int64_t verity_block;
  unsigned bit;
  size_t i;
  int uvm = strcmp(r->cid, HCSB__G_NULL_ID) == 0, e;
  hcsb__gres_t *x;
  hcsb__gdec_t d;

  if (hcsb__gdec_begin(r, &d, "containerModifySettings") < 0) return;
  req = hcsb__json_get(r->root, "Request");
  d.strct = "ModificationRequest";
  if (hcsb__gdec_root(&d, req, "guestrequest.ModificationRequest") < 0 ||
      hcsb__gdec_str(&d, req, "ResourceType", &rtype) < 0 ||
      hcsb__gdec_str(&d, req, "RequestType", &reqtype) < 0) {
    hcsb__gmodify_fail(
        r, HCSB_E_VMCOMPUTE_INVALID_JSON,
        "failed to unmarshal request.Settings as ModifySettingRequest: "
        "HRESULT 0xc037010d: %s",
        d.err);
    return;
  }
  if (reqtype[0] == '\0') reqtype = "Add";
  for (i = 0; i < sizeof rtypes / sizeof rtypes[0]; i++)
    if (strcmp(rtypes[i].name, rtype) == 0) t = &rtypes[i];
  if (t == NULL) {
    hcsb__gmodify_fail(r, HCSB_E_FAIL, "invalid ResourceType '%s'", rtype);
    return;
  }
  settings = req != NULL ? hcsb__json_get(req, "Settings") : NULL;
  d.strct = t->go_name;
  if (hcsb__gdec_root(&d, settings, t->go_name) < 0 ||
      (t->key != NULL && hcsb__gdec_str(&d, settings, t->key, &key) < 0) ||
      decode_detail(&d, t, settings, &detail, &verity_block) < 0) {
    free(detail);
    hcsb__gmodify_fail(
        r, HCSB_E_VMCOMPUTE_INVALID_JSON,
        "failed to unmarshal settings as %s: HRESULT 0xc037010d: %s",
        t->go_name, d.err);
    return;
  }

  if (!uvm && hcsb__gctr_find(r->g, r->cid) == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, NULL);
    goto out;
  }
  /* An attach-only disk has no mount path: the SCSI address names it. */
  if (strcmp(t->name, "MappedVirtualDisk") == 0 && key[0] == '\0') {
    uint32_t controller = 0, lun = 0;
    if (hcsb__gdec_u32(&d, settings, "Controller", &controller) < 0 ||
        hcsb__gdec_u32(&d, settings, "Lun", &lun) < 0) {
      hcsb__gmodify_fail(
          r, HCSB_E_VMCOMPUTE_INVALID_JSON,
          "failed to unmarshal settings as %s: HRESULT 0xc037010d: %s",
          t->go_name, d.err);
      goto out;
    }
    snprintf(scsi_key, sizeof scsi_key, "scsi %" PRIu32 ":%" PRIu32, controller,
             lun);
    key = scsi_key;
  }

  if (uvm == (strcmp(t->name, "ContainerConstraints") == 0)) {
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "the ResourceType \"%s\" is not supported for %s",
                      t->name, uvm ? "the UVM" : "containers");
    goto out;
  }
  bit = strcmp(reqtype, "Add") == 0      ? RT_ADD
        : strcmp(reqtype, "Remove") == 0 ? RT_REMOVE
        : strcmp(reqtype, "Update") == 0 ? RT_UPDATE
        : strcmp(reqtype, "PreAdd") == 0 ? RT_PREADD
                                         : 0;
  if ((t->requests & bit) == 0) {
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "the RequestType \"%s\" is not supported for %s", reqtype,
                      t->name);
    goto out;
  }
  if (strcmp(t->name, "CombinedLayers") == 0 && key[0] == '\0') {
    hcsb__greply_err(r->g, &r->call, HCSB_E_FAIL,
                     "CombinedLayers needs a ContainerRootPath");
    goto out;
  }
  /* The v0.11.8 guest divides the data size by BlockSize to build the
   * dm-verity table (a zero panics it); answered as the failed mount. */
  if (bit == RT_ADD && verity_block <= 0) {
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "failed to create dm-verity target for %s: "
                      "invalid block size %" PRId64,
                      key, verity_block);
    goto out;
  }

  /* Inside a VM the storage types are acted on (act-storage.c), and a
   * container's constraints go to runc update (act-ctr.c). */
  if (r->g->act != NULL && uvm &&
      hcsb__ga_modify(r, t->name, bit == RT_ADD, settings, key, detail)) {
    detail = NULL;
    goto out;
  }
  if (r->g->act != NULL && !uvm) {
    hcsb__gctr_t *c = hcsb__gctr_find(r->g, r->cid);
    if (c != NULL && c->act != NULL) {
      hcsb__ga_update(r, c, settings);
      goto out;
    }
  }
  if (bit == RT_REMOVE) {
    x = find_res(r->g, uvm ? NULL : r->cid, t->name, key);
    if (x != NULL) res_free(r->g, x);
  } else {
    e = res_add(r->g, uvm ? NULL : r->cid, t->name, key, detail);
    detail = NULL;
    if (e < 0) {
      hcsb__greply_err(
          r->g, &r->call, e == -ENOMEM ? HCSB__G_E_OUTOFMEMORY : HCSB_E_FAIL,
          e == -ENOMEM ? "out of memory" : "too many resources recorded");
      goto out;
    }
  }
  hcsb__glog(r->g, 1, "ModifySettings %s %s %s", reqtype, t->name, key);
  hcsb__greply_ok(r->g, &r->call);
out:
  free(detail);
}

/* The resources that are mounts, as opposed to adapters and devices. */
static int is_mount(const hcsb__gres_t *x) {
  return x->cid == NULL && x->key[0] == '/' &&
         (strcmp(x->type, "CombinedLayers") == 0 ||
          strcmp(x->type, "MappedVirtualDisk") == 0 ||
          strcmp(x->type, "MappedDirectory") == 0 ||
          strcmp(x->type, "VPMemDevice") == 0);
}

const hcsb__gres_t *hcsb__gmodify_mount_under(const hcsb__guest_t *g,
                                              const char *dir) {
  const hcsb__gres_t *x;
  size_t n = strlen(dir);

  while (n > 1 && dir[n - 1] == '/') n--;
  if (n == 0 || dir[0] != '/') return NULL;
  TAILQ_FOREACH(x, &g->resources, link) {
    if (!is_mount(x) || strncmp(x->key, dir, n) != 0) continue;
    if (x->key[n] == '\0' || x->key[n] == '/' || n == 1) return x;
  }
  return NULL;
}

int hcsb__gmodify_record(hcsb__guest_t *g, const char *type, const char *key,
                         char *detail) {
  return res_add(g, NULL, type, key, detail);
}

void hcsb__gmodify_forget(hcsb__guest_t *g, const char *type, const char *key) {
  hcsb__gres_t *x = find_res(g, NULL, type, key);
  if (x != NULL) res_free(g, x);
}

void hcsb__gmodify_teardown(hcsb__guest_t *g) {
  hcsb__gres_t *x;

  while ((x = TAILQ_FIRST(&g->resources)) != NULL) res_free(g, x);
}
