/* hcsb-vsockd: a vhost-user backend for QEMU's vhost-user-vsock device that
 * forwards guest vsock connections to Unix sockets with the Firecracker
 * hybrid-vsock convention (README, "hcsb-vsockd").
 *
 * Layers, each testable without the one above it:
 *   vring.c  guest memory table and split virtqueues: turns an avail entry
 *            into a validated list of host pointers (no I/O, no libuv)
 *   pkt.c    the 44-byte virtio-vsock header
 *   line.c   the host side's "CONNECT <port>" line, read as Firecracker does
 *   conn.c   the vsock device: connections, state machine, credit, the
 *            queue of packets for the guest; talks to sockets only through
 *            hcsb__vsd_ops_t (no I/O, no libuv)
 *   pump.c   moves chains between the rings and conn.c
 *   vhost.c  the vhost-user messages (mmaps the memory table it is sent)
 *   main.c   libuv: the sockets, eventfds, signals, command line
 *
 * Everything the guest writes is hostile.  Guest memory is read once into
 * locals before it is validated, every index and length is bounded, and
 * every queue has the cap listed below. */
#ifndef HCSB_VSOCKD_H
#define HCSB_VSOCKD_H

#include <stddef.h>
#include <stdint.h>

/* Caps.  What the guest can make us hold is bounded by these. */
#define HCSB__VSD_MAX_REGIONS 8     /* SET_MEM_TABLE regions */
#define HCSB__VSD_MAX_QUEUE 32768   /* virtqueue size (split ring limit) */
#define HCSB__VSD_MAX_SEGS 64       /* guest buffers in one chain */
#define HCSB__VSD_MAX_INDIRECT 1024 /* descriptors in one indirect table */
#define HCSB__VSD_HDR_LEN 44
/* The largest RW payload the guest may send. */
#define HCSB__VSD_MAX_PAYLOAD 65536
#define HCSB__VSD_BUF_ALLOC 262144 /* credit we give per connection */
#define HCSB__VSD_TXBUF 65536      /* host bytes held per connection */
#define HCSB__VSD_MAX_CONNS 1024
#define HCSB__VSD_RST_QUEUE 256 /* RSTs for unknown connections */
#define HCSB__VSD_RST_CAP (HCSB__VSD_MAX_CONNS + HCSB__VSD_RST_QUEUE)
#define HCSB__VSD_LINE_MAX 32      /* "CONNECT <port>\n" (line.c) */
#define HCSB__VSD_TIMEOUT_MS 10000 /* CONNECT line, guest RESPONSE */
#define HCSB__VSD_HOST_CID 2
#define HCSB__VSD_PORT_BASE 0x80000000u /* host ports for host connects */

/* --- guest memory ------------------------------------------------------ */

typedef struct {
  uint64_t gpa, size, uva; /* guest physical, length, frontend address */
  uint8_t *host;           /* where it is mapped here */
} hcsb__vsd_region_t;

typedef struct {
  unsigned n;
  hcsb__vsd_region_t r[HCSB__VSD_MAX_REGIONS];
} hcsb__vsd_mem_t;

/* Host pointer for [addr, addr+len) when it lies inside one region, else
 * NULL.  Overflow-safe for any 64-bit inputs; len 0 is allowed. */
void *hcsb__vsd_gpa(const hcsb__vsd_mem_t *m, uint64_t gpa, uint64_t len);
void *hcsb__vsd_uva(const hcsb__vsd_mem_t *m, uint64_t uva, uint64_t len);

/* --- descriptor chains ------------------------------------------------- */

typedef struct {
  uint8_t *p;
  uint32_t len;
} hcsb__vsd_seg_t;

/* A chain as the device sees it: the device-readable bytes first
 * (seg[0..nr)), then the device-writable ones (seg[nr..nr+nw)). */
typedef struct {
  uint16_t head;
  unsigned nr, nw;
  uint64_t rlen, wlen;
  hcsb__vsd_seg_t seg[HCSB__VSD_MAX_SEGS];
} hcsb__vsd_chain_t;

/* Copies up to len bytes starting at byte off of the readable (writable)
 * part; returns how many were copied. */
size_t hcsb__vsd_chain_read(const hcsb__vsd_chain_t *c, uint64_t off, void *dst,
                            size_t len);
size_t hcsb__vsd_chain_write(const hcsb__vsd_chain_t *c, uint64_t off,
                             const void *src, size_t len);

/* --- split virtqueue ------------------------------------------------- */

typedef struct {
  uint16_t num; /* 0 until SET_VRING_NUM */
  int addr_set, started, enabled, broken;
  int indirect;  /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
  int event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
  uint64_t desc_uva, avail_uva, used_uva;
  uint16_t last_avail, used_idx;
  /* Resolved by hcsb__vsd_vring_ready() for the current pass. */
  uint8_t *desc, *avail, *used;
} hcsb__vsd_vring_t;

/* 1 when the ring may be processed now (started, enabled, not broken,
 * every part of it inside guest memory); resolves its pointers. */
int hcsb__vsd_vring_ready(hcsb__vsd_vring_t *vq, const hcsb__vsd_mem_t *m);

/* Takes the next available chain.  Returns 1 with *c filled, 0 when the
 * ring is empty, -EINVAL when the chain was taken but is malformed (c->head
 * is set: give it back with length 0), -EIO when the ring itself is broken
 * (avail index or head out of range; the ring is then left alone until it
 * is set up again). */
int hcsb__vsd_vring_pop(hcsb__vsd_vring_t *vq, const hcsb__vsd_mem_t *m,
                        hcsb__vsd_chain_t *c);
void hcsb__vsd_vring_push(hcsb__vsd_vring_t *vq, uint16_t head, uint32_t len);
/* After the pushes of one pass, which began at used index `old`: 1 when
 * the driver wants an interrupt for them (its used_event lies in
 * [old, used_idx) with EVENT_IDX, else its NO_INTERRUPT flag is clear). */
int hcsb__vsd_vring_want_signal(const hcsb__vsd_vring_t *vq, uint16_t old);
/* Asks the driver to notify (kick) us of new buffers (on = 1) or spares it
 * the trouble (on = 0).  With EVENT_IDX "on" publishes avail_event =
 * last_avail and "off" leaves it stale (the driver kicks at most once more);
 * without, it is the used ring's NO_NOTIFY flag.  Turning notifications on
 * returns 1 when buffers arrived meanwhile: the caller must look again, or
 * a buffer added just before would wait for a kick that never comes. */
int hcsb__vsd_vring_notify(hcsb__vsd_vring_t *vq, int on);

/* --- virtio-vsock packets ------------------------------------------ */

enum {
  HCSB__VSD_OP_INVALID = 0,
  HCSB__VSD_OP_REQUEST = 1,
  HCSB__VSD_OP_RESPONSE = 2,
  HCSB__VSD_OP_RST = 3,
  HCSB__VSD_OP_SHUTDOWN = 4,
  HCSB__VSD_OP_RW = 5,
  HCSB__VSD_OP_CREDIT_UPDATE = 6,
  HCSB__VSD_OP_CREDIT_REQUEST = 7
};
#define HCSB__VSD_TYPE_STREAM 1
#define HCSB__VSD_SHUT_RCV 1u
#define HCSB__VSD_SHUT_SEND 2u

typedef struct {
  uint64_t src_cid, dst_cid;
  uint32_t src_port, dst_port, len;
  uint16_t type, op;
  uint32_t flags, buf_alloc, fwd_cnt;
} hcsb__vsd_hdr_t;

void hcsb__vsd_hdr_encode(const hcsb__vsd_hdr_t *h,
                          uint8_t out[HCSB__VSD_HDR_LEN]);
void hcsb__vsd_hdr_decode(const uint8_t in[HCSB__VSD_HDR_LEN],
                          hcsb__vsd_hdr_t *h);

/* --- the CONNECT line (line.c) ------------------------------------ */

/* Looks for the CONNECT line at the start of the len bytes a host client
 * sent.  Returns 0 while more bytes are needed, 1 with *port and *line_len
 * (the bytes the line takes; what follows is data for the guest), or -1
 * with *why (a static phrase for the log) and *line_len (the bytes that
 * were judged) when the line must be refused. */
int hcsb__vsd_connect_line(const uint8_t *buf, size_t len, size_t *line_len,
                           uint32_t *port, const char **why);

/* --- the device ------------------------------------------------------ */

typedef struct hcsb__vsd_conn_s hcsb__vsd_conn_t;
typedef struct hcsb__vsd_dev_s hcsb__vsd_dev_t;

/* What conn.c asks of the socket layer.  None of these call back into
 * conn.c before returning; results come later through hcsb__vsd_host_*. */
typedef struct {
  /* Dial PATH_port for c.  Non-zero: failed at once (the guest gets RST). */
  int (*connect)(void *ctx, hcsb__vsd_conn_t *c, uint32_t port);
  /* Queue buf (malloc'd, ownership passes, also on failure) for c's
   * socket; when written, report `counted` bytes with
   * hcsb__vsd_host_written().  conn.c has at most one guest-data write
   * (plus the "OK" line) in flight per connection. */
  int (*write)(void *ctx, hcsb__vsd_conn_t *c, uint8_t *buf, size_t len,
               size_t counted);
  /* shutdown(SHUT_WR) after the queued writes. */
  void (*shutdown)(void *ctx, hcsb__vsd_conn_t *c);
  /* shutdown(SHUT_RD) now: the guest reads no more (its SHUTDOWN carried
   * RCV), so whoever writes to the host socket gets EPIPE, not a stall. */
  void (*shutdown_read)(void *ctx, hcsb__vsd_conn_t *c);
  /* Start (on=1) or stop reading c's socket. */
  void (*reading)(void *ctx, hcsb__vsd_conn_t *c, int on);
  /* A host client is about to be closed over its CONNECT line: why (a
   * static phrase), and the bytes it sent (line/len, maybe none). */
  void (*refused)(void *ctx, hcsb__vsd_conn_t *c, const char *why,
                  const uint8_t *line, size_t len);
  /* Close c's socket; c is freed right after this returns. */
  void (*close)(void *ctx, hcsb__vsd_conn_t *c);
} hcsb__vsd_ops_t;

enum {
  HCSB__VSD_HANDSHAKE = 1, /* host socket accepted, reading CONNECT line */
  HCSB__VSD_DIALING,       /* guest REQUEST, dialing PATH_port */
  HCSB__VSD_REQUESTED,     /* host CONNECT, REQUEST for the guest */
  HCSB__VSD_ESTABLISHED
};

/* Control packets a connection owes the guest. */
#define HCSB__VSD_OWE_REQUEST 1u
#define HCSB__VSD_OWE_RESPONSE 2u
#define HCSB__VSD_OWE_CREDIT_UPDATE 4u
#define HCSB__VSD_OWE_CREDIT_REQUEST 8u

struct hcsb__vsd_conn_s {
  void *io; /* the socket layer's */
  int state;
  uint32_t local_port, peer_port; /* host side, guest side */
  hcsb__vsd_conn_t *hnext;        /* hash chain */
  hcsb__vsd_conn_t *qprev, *qnext;
  hcsb__vsd_conn_t *aprev, *anext; /* every live connection */
  int queued, in_table, reading;
  unsigned owe;
  /* guest -> host: what we advertise and what went out to the socket */
  uint32_t rx_cnt, fwd_cnt, fwd_cnt_sent;
  uint8_t *wbuf; /* guest bytes staged while a write is in flight */
  size_t wlen, wcap;
  int writing; /* writes handed to the socket layer, not yet done */
  /* host -> guest: the guest's credit and what we sent */
  uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
  /* HCSB__VSD_TXBUF bytes, allocated on first use: a ring, the bytes for
   * the guest are tx_len bytes from tx_off (wrapping), never moved. */
  uint8_t *txbuf;
  size_t tx_off, tx_len;
  int peer_shut_rcv, peer_shut_send; /* from the guest's SHUTDOWN */
  int host_eof, shut_sent;           /* host socket EOF, our SHUTDOWN */
  int host_wr_shut, host_rd_shut;
  int read_retry;    /* no buffer for a read: the sweep tries again */
  uint64_t deadline; /* HANDSHAKE/REQUESTED: 0 = not yet seen by sweep */
};

typedef struct {
  uint64_t guest_pkts, host_pkts, bad_pkts, credit_violations, rst_dropped;
  uint64_t refused_conns, timeouts, bad_lines;
} hcsb__vsd_stats_t;

#define HCSB__VSD_HASH 2048

struct hcsb__vsd_dev_s {
  uint64_t guest_cid;
  const hcsb__vsd_ops_t *ops;
  void *ctx;
  unsigned nconns;
  uint32_t next_port;
  hcsb__vsd_conn_t *table[HCSB__VSD_HASH];
  hcsb__vsd_conn_t *qhead, *qtail; /* owe the guest something */
  hcsb__vsd_conn_t *all;
  struct {
    uint32_t local_port, peer_port;
  } rst[HCSB__VSD_RST_CAP];
  unsigned rst_head, rst_len;
  hcsb__vsd_stats_t stats;
};

void hcsb__vsd_dev_init(hcsb__vsd_dev_t *d, uint64_t guest_cid,
                        const hcsb__vsd_ops_t *ops, void *ctx);
/* Closes every connection (ops->close for each) and forgets queued RSTs. */
void hcsb__vsd_dev_reset(hcsb__vsd_dev_t *d);

/* One packet the guest put on the tx queue. */
void hcsb__vsd_guest_tx(hcsb__vsd_dev_t *d, const hcsb__vsd_chain_t *c);
/* 1 when a packet for the guest is waiting for an rx buffer. */
int hcsb__vsd_rx_pending(const hcsb__vsd_dev_t *d);
/* Writes the next packet into c's writable part; returns the bytes written
 * (header + payload), 0 if nothing was waiting or c is too short. */
uint32_t hcsb__vsd_guest_rx(hcsb__vsd_dev_t *d, const hcsb__vsd_chain_t *c);

/* The socket layer's events.  Accept returns NULL at the connection cap. */
hcsb__vsd_conn_t *hcsb__vsd_host_accept(hcsb__vsd_dev_t *d, void *io);
void hcsb__vsd_host_connected(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c,
                              int status);
/* Where the next read may land, and how much (one contiguous run of the
 * ring, within the guest's credit): 0 means stop reading, or, with *p
 * NULL while reading is on, that no buffer could be allocated (the socket
 * layer then reports -ENOBUFS to hcsb__vsd_host_read_failed). */
void hcsb__vsd_host_read_space(hcsb__vsd_conn_t *c, uint8_t **p, size_t *len);
/* n bytes were read into that space. */
void hcsb__vsd_host_read(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c, size_t n);
void hcsb__vsd_host_eof(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c);
/* A read failed with err (a negative errno).  -ENOBUFS means no buffer
 * could be had for it (hcsb__vsd_host_read_space found no memory): reading
 * stops and the sweep tries again, the connection lives on.  Anything else
 * is the socket's failure: the connection is reset. */
void hcsb__vsd_host_read_failed(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c,
                                int err);
/* Writing to the socket failed: the connection is reset. */
void hcsb__vsd_host_error(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c);
void hcsb__vsd_host_written(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c,
                            size_t counted);
/* Expires CONNECT lines and guest RESPONSEs that take too long; retries
 * reads that found no buffer. */
void hcsb__vsd_sweep(hcsb__vsd_dev_t *d, uint64_t now_ms);
hcsb__vsd_conn_t *hcsb__vsd_find(const hcsb__vsd_dev_t *d, uint32_t local,
                                 uint32_t peer);

/* --- rings <-> device ------------------------------------------------ */

/* Each handles at most `budget` chains and returns how many; *signal is
 * set when the guest should be interrupted. */
unsigned hcsb__vsd_pump_tx(hcsb__vsd_dev_t *d, hcsb__vsd_vring_t *vq,
                           const hcsb__vsd_mem_t *m, unsigned budget,
                           int *signal);
unsigned hcsb__vsd_pump_rx(hcsb__vsd_dev_t *d, hcsb__vsd_vring_t *vq,
                           const hcsb__vsd_mem_t *m, unsigned budget,
                           int *signal);

/* --- vhost-user ------------------------------------------------------ */

#define HCSB__VSD_MSG_HDR 12
#define HCSB__VSD_MSG_MAX 4096 /* payload cap; larger ends the session */
#define HCSB__VSD_MAX_FDS 8
#define HCSB__VSD_NQUEUES 2 /* rx, tx: QEMU keeps the event queue */

typedef struct hcsb__vsd_vhost_s hcsb__vsd_vhost_t;
struct hcsb__vsd_vhost_s {
  uint64_t features, protocol_features;
  uint64_t guest_cid;
  hcsb__vsd_mem_t mem;
  void *map[HCSB__VSD_MAX_REGIONS];
  size_t map_len[HCSB__VSD_MAX_REGIONS];
  hcsb__vsd_vring_t vq[HCSB__VSD_NQUEUES];
  int kick_fd[HCSB__VSD_NQUEUES], call_fd[HCSB__VSD_NQUEUES];
  int err_fd[HCSB__VSD_NQUEUES];
  /* Told when a ring's kick fd or running state changed, just before a
   * kick fd is closed, and on RESET_OWNER / RESET_DEVICE. */
  void (*ring_changed)(hcsb__vsd_vhost_t *vh, unsigned idx);
  void (*kick_closing)(hcsb__vsd_vhost_t *vh, unsigned idx);
  void (*reset)(hcsb__vsd_vhost_t *vh);
  void *data;
  int verbose;
};

void hcsb__vsd_vhost_init(hcsb__vsd_vhost_t *vh, uint64_t guest_cid);
/* Handles one whole message (header + payload) and the fds that came with
 * it (always consumed: kept or closed).  The reply, if any, goes to out
 * (HCSB__VSD_MSG_HDR + HCSB__VSD_MSG_MAX bytes) and *out_len.  Returns 0,
 * or -EPROTO when the frontend broke the protocol beyond an error reply. */
int hcsb__vsd_vhost_handle(hcsb__vsd_vhost_t *vh, const uint8_t *msg,
                           size_t len, int *fds, unsigned nfds, uint8_t *out,
                           size_t *out_len);
/* Closes the session's fds (kick_closing first for kick fds) and unmaps
 * its memory; vh is then as after init, callbacks kept, ready for the next
 * frontend. */
void hcsb__vsd_vhost_free(hcsb__vsd_vhost_t *vh);
const char *hcsb__vsd_vhost_name(uint32_t request);

/* Little-endian access to guest-shared and wire memory. */
static inline uint16_t hcsb__vsd_le16(const uint8_t *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t hcsb__vsd_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline uint64_t hcsb__vsd_le64(const uint8_t *p) {
  return hcsb__vsd_le32(p) | (uint64_t)hcsb__vsd_le32(p + 4) << 32;
}
static inline void hcsb__vsd_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void hcsb__vsd_put32(uint8_t *p, uint32_t v) {
  hcsb__vsd_put16(p, (uint16_t)v);
  hcsb__vsd_put16(p + 2, (uint16_t)(v >> 16));
}
static inline void hcsb__vsd_put64(uint8_t *p, uint64_t v) {
  hcsb__vsd_put32(p, (uint32_t)v);
  hcsb__vsd_put32(p + 4, (uint32_t)(v >> 32));
}

#endif
