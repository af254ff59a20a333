/* ModifySettings: decoded the way the GCS's UnmarshalContainerModifySettings
 * does it (unknown ResourceType = E_FAIL, badly typed Settings =
 * 0xC037010D), checked against the request types each resource accepts,
 * and recorded rather than acted on: there are no disks or overlays here.
 * The records show up in DumpStacks.  A Remove of something never added
 * succeeds, as in the guest (storage.UnmountPath is a no-op for a path
 * that does not exist), so a host may repeat a Remove it lost the answer
 * of.  What is mounted matters to DeleteContainerState, which removes the
 * bundle directory and fails while something is mounted below it. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

enum { RT_ADD = 1, RT_REMOVE = 2, RT_UPDATE = 4, RT_PREADD = 8, RT_ANY = 15 };

typedef struct rtype_s {
  const char *name;
  unsigned requests;    /* accepted RequestTypes */
  const char *go_name;  /* the settings type in decode errors */
  const char *key;      /* the settings field that identifies the resource */
} rtype_t;

/* The 0.11 guest's catalogue (§7).  PodCgroupMemoryLimit and the Windows
 * types are unknown to it. */
static const rtype_t rtypes[] = {
    {"MappedVirtualDisk", RT_ADD | RT_REMOVE, "MappedVirtualDiskV2", "MountPath"},
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

static void fail(hcsb__greq_t *r, uint32_t hr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "failed to unmarshal JSON in message "<body>": <what>" */
static void fail(hcsb__greq_t *r, uint32_t hr, const char *fmt, ...) {
  size_t n = r->len < HCSB__G_MAX_ECHO ? r->len : HCSB__G_MAX_ECHO;
  char *what = NULL;
  va_list ap;
  int k;

  va_start(ap, fmt);
  k = vasprintf(&what, fmt, ap);
  va_end(ap);
  hcsb__greply_errf(r->g, &r->call, hr,
                    "failed to unmarshal JSON in message \"%.*s%s\": %s",
                    (int)n, r->body, n < r->len ? "..." : "",
                    k < 0 ? "out of memory" : what);
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

static void res_free(hcsb__guest_t *g, hcsb__gres_t *x) {
  TAILQ_REMOVE(&g->resources, x, link);
  g->nresources--;
  free(x->cid);
  free(x->type);
  free(x->key);
  free(x);
}

static int res_add(hcsb__guest_t *g, const char *cid, const char *type,
                   const char *key) {
  hcsb__gres_t *x = find_res(g, cid, type, key);

  if (x != NULL) return 0; /* mounting the same thing twice: one record */
  if (g->nresources >= HCSB__G_MAX_RESOURCES) return -ENOSPC;
  x = calloc(1, sizeof *x);
  if (x == NULL) return -ENOMEM;
  x->cid = cid != NULL ? strdup(cid) : NULL;
  x->type = strdup(type);
  x->key = strdup(key);
  if ((cid != NULL && x->cid == NULL) || x->type == NULL || x->key == NULL) {
    free(x->cid);
    free(x->type);
    free(x->key);
    free(x);
    return -ENOMEM;
  }
  TAILQ_INSERT_TAIL(&g->resources, x, link);
  g->nresources++;
  return 0;
}

void hcsb__gh_modify(hcsb__greq_t *r) {
  json_object *req, *settings = NULL;
  const char *rtype = "", *reqtype = "", *key = "";
  char scsi_key[32];
  const rtype_t *t = NULL;
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
    fail(r, 0xC037010Du,
         "failed to unmarshal request.Settings as ModifySettingRequest: "
         "HRESULT 0xc037010d: %s",
         d.err);
    return;
  }
  if (reqtype[0] == '\0') reqtype = "Add";
  for (i = 0; i < sizeof rtypes / sizeof rtypes[0]; i++)
    if (strcmp(rtypes[i].name, rtype) == 0) t = &rtypes[i];
  if (t == NULL) {
    fail(r, 0x80004005u, "invalid ResourceType '%s'", rtype);
    return;
  }
  settings = req != NULL ? hcsb__json_get(req, "Settings") : NULL;
  d.strct = t->go_name;
  if (hcsb__gdec_root(&d, settings, t->go_name) < 0 ||
      (t->key != NULL && hcsb__gdec_str(&d, settings, t->key, &key) < 0)) {
    fail(r, 0xC037010Du,
         "failed to unmarshal settings as %s: HRESULT 0xc037010d: %s",
         t->go_name, d.err);
    return;
  }

  if (!uvm && hcsb__gctr_find(r->g, r->cid) == NULL) {
    hcsb__greply_err(r->g, &r->call, 0xC037010Eu, NULL);
    return;
  }
  /* An attach-only disk has no mount path: the SCSI address names it. */
  if (strcmp(t->name, "MappedVirtualDisk") == 0 && key[0] == '\0') {
    uint32_t controller = 0, lun = 0;
    if (hcsb__gdec_u32(&d, settings, "Controller", &controller) < 0 ||
        hcsb__gdec_u32(&d, settings, "Lun", &lun) < 0) {
      fail(r, 0xC037010Du,
           "failed to unmarshal settings as %s: HRESULT 0xc037010d: %s",
           t->go_name, d.err);
      return;
    }
    snprintf(scsi_key, sizeof scsi_key, "scsi %" PRIu32 ":%" PRIu32,
             controller, lun);
    key = scsi_key;
  }

  if (uvm == (strcmp(t->name, "ContainerConstraints") == 0)) {
    hcsb__greply_errf(r->g, &r->call, 0x80004005u,
                      "the ResourceType \"%s\" is not supported for %s",
                      t->name, uvm ? "the UVM" : "containers");
    return;
  }
  bit = strcmp(reqtype, "Add") == 0      ? RT_ADD
        : strcmp(reqtype, "Remove") == 0 ? RT_REMOVE
        : strcmp(reqtype, "Update") == 0 ? RT_UPDATE
        : strcmp(reqtype, "PreAdd") == 0 ? RT_PREADD
                                         : 0;
  if ((t->requests & bit) == 0) {
    hcsb__greply_errf(r->g, &r->call, 0x80004005u,
                      "the RequestType \"%s\" is not supported for %s",
                      reqtype, t->name);
    return;
  }
  if (strcmp(t->name, "CombinedLayers") == 0 && key[0] == '\0') {
    hcsb__greply_err(r->g, &r->call, 0x80004005u,
                     "CombinedLayers needs a ContainerRootPath");
    return;
  }

  if (bit == RT_REMOVE) {
    x = find_res(r->g, uvm ? NULL : r->cid, t->name, key);
    if (x != NULL) res_free(r->g, x);
  } else {
    e = res_add(r->g, uvm ? NULL : r->cid, t->name, key);
    if (e < 0) {
      hcsb__greply_err(r->g, &r->call, e == -ENOMEM ? 0x8007000Eu : 0x80004005u,
                       e == -ENOMEM ? "out of memory"
                                    : "too many resources recorded");
      return;
    }
  }
  hcsb__glog(r->g, 1, "ModifySettings %s %s %s", reqtype, t->name, key);
  hcsb__greply_ok(r->g, &r->call);
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

void hcsb__gmodify_teardown(hcsb__guest_t *g) {
  hcsb__gres_t *x;

  while ((x = TAILQ_FIRST(&g->resources)) != NULL) res_free(g, x);
}
