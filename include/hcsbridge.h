/* hcsbridge — host side of the HCS<->GCS bridge, on libuv.
 *
 * Include this one header.  The pieces:
 *   hcsbridge/common.h    version, status codes, guest errors, identifiers
 *   hcsbridge/errors.h    error classes (IsNotExist ...; containerd errdefs)
 *   hcsbridge/messages.h  addresses and message structs (no libuv)
 *   hcsbridge/bridge.h    the bridge: one GCS connection, calls, transports
 *   hcsbridge/conn.h      guest connection, containers, processes, stdio
 *   hcsbridge/metrics.h   LCOWMetrics (cgroup v1 Metrics) as typed structs
 *   hcsbridge/uvm.h       the utility VM: QEMU, VPMem layers, containers
 *
 * "protocol.md §N.M" in these headers is a section of the protocol
 * document, doc/protocol.md in the source tree, installed as
 * $(docdir)/protocol.md (e.g. /usr/local/share/doc/hcsbridge/protocol.md).
 */
#ifndef HCSBRIDGE_H
#define HCSBRIDGE_H

#include <hcsbridge/common.h>
#include <hcsbridge/errors.h>
#include <hcsbridge/messages.h>
#include <hcsbridge/bridge.h>
#include <hcsbridge/conn.h>
#include <hcsbridge/uvm.h>

#endif
