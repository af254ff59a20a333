/* Fake guest memory, rings and socket layer for hcsb-vsockd's pure parts,
 * shared by test/test-vsockd.c and fuzz/fuzz-vsockd.c.  No harness calls:
 * failures are return values. */
#ifndef HCSB_VSOCKD_FAKE_H
#define HCSB_VSOCKD_FAKE_H

#include "vsockd/vsockd.h"

#define FAKE_GPA 0x100000ull       /* guest physical base of the RAM */
#define FAKE_UVA 0x7f0000000000ull /* where the "frontend" has it */
#define FAKE_RAM (1u << 20)
#define FAKE_RX 0
#define FAKE_TX 1
#define FAKE_CID 3
#define FAKE_MAX_WRITES 4096

/* Ring q's desc table, avail and used rings sit at q * 0x10000 in RAM;
 * buffers come from the rest, handed out in order and wrapped. */
typedef struct {
  uint8_t *ram;
  int own_ram;
  hcsb__vsd_mem_t mem;
  hcsb__vsd_vring_t vq[2];
  uint16_t avail_idx[2], next_desc[2];
  uint64_t heap;
} fake_vm_t;

typedef struct {
  hcsb__vsd_conn_t *conn;
  size_t counted;
} fake_write_t;

typedef struct {
  int connects, connect_rc, closes, shutdowns, read_shutdowns, reading_changes;
  int accepted; /* kept by the caller: host sockets it accepted */
  /* CONNECT lines refused: how many, the last reason and line. */
  int refusals;
  const char *last_why;
  char last_line[HCSB__VSD_LINE_MAX + 1];
  uint32_t connect_port;
  hcsb__vsd_conn_t *last_conn, *last_closed;
  int last_reading;
  /* Bytes written to host sockets (all connections, in order). */
  uint8_t *data;
  size_t data_len, data_cap;
  fake_write_t pending[FAKE_MAX_WRITES]; /* conn NULL: dropped */
  unsigned npending;
  int flushing;
} fake_host_t;

extern const hcsb__vsd_ops_t fake_ops;

void fake_vm_init(fake_vm_t *vm, uint16_t num);
/* The same on FAKE_RAM bytes the caller owns (e.g. a shared memfd). */
void fake_vm_init_ram(fake_vm_t *vm, uint16_t num, uint8_t *ram);
void fake_vm_free(fake_vm_t *vm);
uint64_t fake_alloc(fake_vm_t *vm, size_t len);
void *fake_ptr(fake_vm_t *vm, uint64_t gpa);
void fake_desc(fake_vm_t *vm, int q, uint16_t i, uint64_t addr, uint32_t len,
               uint16_t flags, uint16_t next);
void fake_publish(fake_vm_t *vm, int q, uint16_t head);
uint16_t fake_used_idx(fake_vm_t *vm, int q);
void fake_used(fake_vm_t *vm, int q, uint16_t at, uint32_t *id, uint32_t *len);

/* A tx chain (header buffer, payload buffer) made available... */
void fake_post_tx(fake_vm_t *vm, const hcsb__vsd_hdr_t *h, const void *payload,
                  uint32_t len);
/* ... and run through pump_tx. */
void fake_send(fake_vm_t *vm, hcsb__vsd_dev_t *d, const hcsb__vsd_hdr_t *h,
               const void *payload, uint32_t len);
/* Makes one rx chain available like Linux 6.1 does (44-byte header buffer,
 * 4 KiB buffer); returns its head. */
uint16_t fake_post_rx(fake_vm_t *vm);
/* The packet in used entry `at` of the rx ring, which must be a chain from
 * fake_post_rx: its payload length, or -1 if malformed. */
int fake_rx_packet(fake_vm_t *vm, uint16_t at, hcsb__vsd_hdr_t *h,
                   uint8_t *payload, size_t cap);
/* fake_post_rx, then pump_rx: the payload length, or -1 if none came. */
int fake_recv(fake_vm_t *vm, hcsb__vsd_dev_t *d, hcsb__vsd_hdr_t *h,
              uint8_t *payload, size_t cap);
/* A guest header for our guest talking to host port `local`. */
hcsb__vsd_hdr_t fake_hdr(uint16_t op, uint32_t guest_port, uint32_t local);

void fake_host_init(fake_host_t *fh);
void fake_host_free(fake_host_t *fh);
/* Completes every queued write (hcsb__vsd_host_written). */
void fake_host_flush(fake_host_t *fh, hcsb__vsd_dev_t *d);

#endif
