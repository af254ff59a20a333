/* Stats: the guest's cgroup metrics (hcsbridge/metrics.h, typed by the
 * library) as containerd's io.containerd.cgroups.v1.Metrics, the message
 * `ctr task metrics` and the CRI read from a Linux task's Stats. */
#ifndef HCSB_SHIM_CGMETRICS_H
#define HCSB_SHIM_CGMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include <hcsbridge/metrics.h>

#include "cgroups.pb-c.h"

/* The Any type_url of the packed message. */
#define HCSB__CGMETRICS_TYPE_URL "io.containerd.cgroups.v1.Metrics"

/* Packs `m` (NULL: an empty message) into *out (malloc'd, *len bytes).
 * Every field is copied as it is (the units are the same).  0 or
 * -ENOMEM. */
int hcsb__cgmetrics_pack(const hcsb_metrics_t *m, uint8_t **out, size_t *len);

#endif
