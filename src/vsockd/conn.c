/* The virtio-vsock device: connections between guest ports and host Unix
 * sockets (virtio 1.2, 5.10.6), with no I/O of its own.
 *
 * Flow control both ways is the spec's credit scheme.  Guest -> host: we
 * advertise HCSB__VSD_BUF_ALLOC per connection and count a byte as
 * forwarded (fwd_cnt) only once the socket layer has written it, so the
 * bytes we hold for a connection never exceed what we advertised; a guest
 * that sends more is reset.  Host -> guest: a connection reads its socket
 * only into the part of its HCSB__VSD_TXBUF buffer the guest's credit
 * covers, so a stalled or lying guest stalls that socket, not our memory.
 * That buffer is a ring: bytes are copied in once by the socket read and
 * out once into the guest's buffers, and never moved in between (Linux
 * guests post 4 KiB rx buffers, so shifting the rest down after each
 * packet cost several times the data).
 *
 * A connection is freed in one place, conn_free(), which detaches it from
 * every table and queue, tells the socket layer to close, and queues the
 * RST the guest is owed.  Packets for the guest wait in one queue of
 * connections that owe something, plus a bounded queue of RSTs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsockd/vsockd.h"

/* Every connection can owe one RST; HCSB__VSD_RST_QUEUE more are for
 * packets to connections we never had. */
#define RST_CAP HCSB__VSD_RST_CAP

static unsigned bucket(uint32_t local, uint32_t peer) {
  uint32_t h = local * 0x9E3779B1u ^ peer * 0x85EBCA77u;
  return (h ^ h >> 15) % HCSB__VSD_HASH;
}

hcsb__vsd_conn_t *hcsb__vsd_find(const hcsb__vsd_dev_t *d, uint32_t local,
                                 uint32_t peer) {
  hcsb__vsd_conn_t *c = d->table[bucket(local, peer)];
  while (c != NULL && (c->local_port != local || c->peer_port != peer))
    c = c->hnext;
  return c;
}

static void table_insert(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  hcsb__vsd_conn_t **b = &d->table[bucket(c->local_port, c->peer_port)];
  c->hnext = *b;
  *b = c;
  c->in_table = 1;
}

static void table_remove(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  hcsb__vsd_conn_t **p = &d->table[bucket(c->local_port, c->peer_port)];
  while (*p != c) p = &(*p)->hnext;
  *p = c->hnext;
  c->in_table = 0;
}

static void queue_remove(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  if (!c->queued) return;
  if (c->qprev)
    c->qprev->qnext = c->qnext;
  else
    d->qhead = c->qnext;
  if (c->qnext)
    c->qnext->qprev = c->qprev;
  else
    d->qtail = c->qprev;
  c->qprev = c->qnext = NULL;
  c->queued = 0;
}

static void queue_add(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  if (c->queued) return;
  c->qprev = d->qtail;
  c->qnext = NULL;
  if (d->qtail)
    d->qtail->qnext = c;
  else
    d->qhead = c;
  d->qtail = c;
  c->queued = 1;
}

/* Bytes the guest will still accept.  A fwd_cnt ahead of what we sent, or
 * a buffer smaller than what is in flight, is read as no credit. */
static uint32_t credit(const hcsb__vsd_conn_t *c) {
  uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
  return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Where the next socket read may land: contiguous free space after the
 * bytes held, capped by what the guest's credit allows. */
static size_t read_room(const hcsb__vsd_conn_t *c, size_t allowance) {
  size_t tail = (c->tx_off + c->tx_len) % HCSB__VSD_TXBUF;
  size_t run = tail >= c->tx_off ? HCSB__VSD_TXBUF - tail : c->tx_off - tail;
  return allowance < run ? allowance : run;
}

/* n bytes went to the guest (or were dropped). */
static void tx_consume(hcsb__vsd_conn_t *c, size_t n) {
  c->tx_off = (c->tx_off + n) % HCSB__VSD_TXBUF;
  c->tx_len -= n;
  if (c->tx_len == 0) c->tx_off = 0; /* the whole buffer is one run again */
}

static int can_send_data(const hcsb__vsd_conn_t *c) {
  return c->state == HCSB__VSD_ESTABLISHED && c->tx_len > 0 &&
         !c->peer_shut_rcv && credit(c) > 0;
}

static int shutdown_due(const hcsb__vsd_conn_t *c) {
  return c->state == HCSB__VSD_ESTABLISHED && c->host_eof && !c->shut_sent &&
         (c->tx_len == 0 || c->peer_shut_rcv);
}

static void requeue(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  if (c->owe || can_send_data(c) || shutdown_due(c))
    queue_add(d, c);
  else
    queue_remove(d, c);
}

static size_t read_allowance(const hcsb__vsd_conn_t *c) {
  switch (c->state) {
    case HCSB__VSD_HANDSHAKE:
      return HCSB__VSD_LINE_MAX - c->tx_len;
    case HCSB__VSD_ESTABLISHED: {
      if (c->host_eof || c->peer_shut_rcv) return 0;
      size_t cr = credit(c), room = HCSB__VSD_TXBUF - c->tx_len;
      size_t allowed = cr > c->tx_len ? cr - c->tx_len : 0;
      return allowed < room ? allowed : room;
    }
    default:
      return 0;
  }
}

static void update_reading(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  int want = read_allowance(c) > 0;
  if (want == c->reading) return;
  c->reading = want;
  d->ops->reading(d->ctx, c, want);
}

static void rst_push(hcsb__vsd_dev_t *d, uint32_t local, uint32_t peer,
                     unsigned cap) {
  if (d->rst_len >= cap) {
    d->stats.rst_dropped++;
    return;
  }
  unsigned i = (d->rst_head + d->rst_len) % RST_CAP;
  d->rst[i].local_port = local;
  d->rst[i].peer_port = peer;
  d->rst_len++;
}

static void conn_free(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c, int send_rst) {
  if (c->in_table) {
    table_remove(d, c);
    if (send_rst) rst_push(d, c->local_port, c->peer_port, RST_CAP);
  }
  queue_remove(d, c);
  if (c->aprev)
    c->aprev->anext = c->anext;
  else
    d->all = c->anext;
  if (c->anext) c->anext->aprev = c->aprev;
  d->nconns--;
  d->ops->close(d->ctx, c);
  free(c->txbuf);
  free(c->wbuf);
  free(c);
}

static hcsb__vsd_conn_t *conn_new(hcsb__vsd_dev_t *d, int state) {
  if (d->nconns >= HCSB__VSD_MAX_CONNS) return NULL;
  hcsb__vsd_conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->state = state;
  c->anext = d->all;
  if (d->all) d->all->aprev = c;
  d->all = c;
  d->nconns++;
  return c;
}

/* Both directions are finished and everything the guest sent is written:
 * end it with the RST the guest waits for after its SHUTDOWN. */
static int maybe_finish(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  if (c->state != HCSB__VSD_ESTABLISHED || !c->peer_shut_send) return 0;
  if (!c->peer_shut_rcv && !(c->host_eof && c->shut_sent)) return 0;
  if (c->rx_cnt != c->fwd_cnt) return 0;
  conn_free(d, c, 1);
  return 1;
}

void hcsb__vsd_dev_init(hcsb__vsd_dev_t *d, uint64_t guest_cid,
                        const hcsb__vsd_ops_t *ops, void *ctx) {
  memset(d, 0, sizeof *d);
  d->guest_cid = guest_cid;
  d->ops = ops;
  d->ctx = ctx;
  d->next_port = HCSB__VSD_PORT_BASE;
}

void hcsb__vsd_dev_reset(hcsb__vsd_dev_t *d) {
  while (d->all != NULL) conn_free(d, d->all, 0);
  d->rst_len = 0;
}

/* Guest bytes go to the socket layer one write at a time: what arrives
 * while a write is in flight is appended to one staging buffer.  That keeps
 * a guest sending 1-byte packets from costing a write request per byte;
 * the staging buffer stays within the credit we gave. */
static int flush_writes(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  if (c->writing > 0 || c->wlen == 0) return 0;
  uint8_t *buf = c->wbuf;
  size_t n = c->wlen;
  c->wbuf = NULL;
  c->wlen = c->wcap = 0;
  c->writing++;
  return d->ops->write(d->ctx, c, buf, n, n);
}

/* Half-close the host socket once everything before the guest's
 * SHUTDOWN(SEND) is queued ahead of it. */
static void maybe_shutdown_host(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  if (!c->peer_shut_send || c->host_wr_shut || c->wlen > 0) return;
  c->host_wr_shut = 1;
  d->ops->shutdown(d->ctx, c);
}

/* Payload of an RW packet: copied out of guest memory once.  Returns 0 or
 * -1 when the connection must be reset. */
static int guest_data(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c,
                      const hcsb__vsd_hdr_t *h, const hcsb__vsd_chain_t *ch) {
  if (c->state != HCSB__VSD_ESTABLISHED || c->peer_shut_send ||
      h->len > HCSB__VSD_MAX_PAYLOAD || h->len > ch->rlen - HCSB__VSD_HDR_LEN) {
    d->stats.bad_pkts++;
    return -1;
  }
  if (h->len == 0) return 0;
  if ((uint64_t)(c->rx_cnt - c->fwd_cnt) + h->len > HCSB__VSD_BUF_ALLOC) {
    d->stats.credit_violations++;
    return -1;
  }
  if (c->wlen + h->len > c->wcap) {
    /* Bounded: wlen never exceeds what the credit check above allows. */
    size_t cap = c->wcap ? c->wcap : 4096;
    while (cap < c->wlen + h->len) cap *= 2;
    uint8_t *p = realloc(c->wbuf, cap);
    if (p == NULL) return -1;
    c->wbuf = p;
    c->wcap = cap;
  }
  hcsb__vsd_chain_read(ch, HCSB__VSD_HDR_LEN, c->wbuf + c->wlen, h->len);
  c->wlen += h->len;
  c->rx_cnt += h->len;
  return flush_writes(d, c) == 0 ? 0 : -1;
}

static void guest_request(hcsb__vsd_dev_t *d, const hcsb__vsd_hdr_t *h) {
  hcsb__vsd_conn_t *c = conn_new(d, HCSB__VSD_DIALING);
  if (c == NULL) {
    d->stats.refused_conns++;
    rst_push(d, h->dst_port, h->src_port, HCSB__VSD_RST_QUEUE);
    return;
  }
  c->local_port = h->dst_port;
  c->peer_port = h->src_port;
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  table_insert(d, c);
  if (d->ops->connect(d->ctx, c, c->local_port) != 0) {
    d->stats.refused_conns++;
    conn_free(d, c, 1);
  }
}

void hcsb__vsd_guest_tx(hcsb__vsd_dev_t *d, const hcsb__vsd_chain_t *ch) {
  uint8_t raw[HCSB__VSD_HDR_LEN];
  hcsb__vsd_hdr_t h;
  hcsb__vsd_conn_t *c;
  int reset = 0;

  d->stats.guest_pkts++;
  if (ch->rlen < HCSB__VSD_HDR_LEN) {
    d->stats.bad_pkts++;
    return;
  }
  hcsb__vsd_chain_read(ch, 0, raw, sizeof raw);
  hcsb__vsd_hdr_decode(raw, &h);
  /* Not from our guest, or not for us: nothing to answer. */
  if (h.src_cid != d->guest_cid || h.dst_cid != HCSB__VSD_HOST_CID) {
    d->stats.bad_pkts++;
    return;
  }
  c = hcsb__vsd_find(d, h.dst_port, h.src_port);
  if (h.type != HCSB__VSD_TYPE_STREAM) {
    d->stats.bad_pkts++;
    if (c != NULL)
      conn_free(d, c, 1);
    else if (h.op != HCSB__VSD_OP_RST)
      rst_push(d, h.dst_port, h.src_port, HCSB__VSD_RST_QUEUE);
    return;
  }
  if (h.op == HCSB__VSD_OP_REQUEST) {
    /* A second REQUEST for a live pair: the guest lost track of it. */
    if (c != NULL)
      conn_free(d, c, 1);
    else
      guest_request(d, &h);
    return;
  }
  if (c == NULL) {
    if (h.op != HCSB__VSD_OP_RST)
      rst_push(d, h.dst_port, h.src_port, HCSB__VSD_RST_QUEUE);
    return;
  }
  c->peer_buf_alloc = h.buf_alloc;
  c->peer_fwd_cnt = h.fwd_cnt;
  switch (h.op) {
    case HCSB__VSD_OP_RST:
      conn_free(d, c, 0);
      return;
    case HCSB__VSD_OP_RESPONSE:
      if (c->state != HCSB__VSD_REQUESTED) {
        reset = 1;
        break;
      }
      {
        char line[24];
        size_t n = (size_t)snprintf(line, sizeof line, "OK %u\n",
                                    (unsigned)c->local_port);
        uint8_t *buf = malloc(n);
        c->state = HCSB__VSD_ESTABLISHED;
        c->deadline = 0;
        if (buf == NULL) {
          reset = 1;
          break;
        }
        memcpy(buf, line, n);
        c->writing++;
        if (d->ops->write(d->ctx, c, buf, n, 0) != 0) reset = 1;
      }
      break;
    case HCSB__VSD_OP_SHUTDOWN:
      if (c->state != HCSB__VSD_ESTABLISHED) {
        reset = 1;
        break;
      }
      if (h.flags & HCSB__VSD_SHUT_RCV) {
        c->peer_shut_rcv = 1;
        tx_consume(c, c->tx_len); /* nobody will read it */
        if (!c->host_rd_shut) {
          c->host_rd_shut = 1;
          d->ops->shutdown_read(d->ctx, c);
        }
      }
      if (h.flags & HCSB__VSD_SHUT_SEND) {
        c->peer_shut_send = 1;
        maybe_shutdown_host(d, c);
      }
      if (maybe_finish(d, c)) return;
      break;
    case HCSB__VSD_OP_RW:
      reset = guest_data(d, c, &h, ch) != 0;
      break;
    case HCSB__VSD_OP_CREDIT_UPDATE:
      break;
    case HCSB__VSD_OP_CREDIT_REQUEST:
      c->owe |= HCSB__VSD_OWE_CREDIT_UPDATE;
      break;
    default:
      d->stats.bad_pkts++;
      reset = 1;
  }
  if (reset) {
    conn_free(d, c, 1);
    return;
  }
  if (credit(c) > 0) c->owe &= ~HCSB__VSD_OWE_CREDIT_REQUEST;
  update_reading(d, c);
  requeue(d, c);
}

int hcsb__vsd_rx_pending(const hcsb__vsd_dev_t *d) {
  return d->rst_len > 0 || d->qhead != NULL;
}

/* Writes the packet into the chain; a payload (h->len bytes) comes from
 * the front of c's ring, in at most two runs. */
static uint32_t emit(hcsb__vsd_dev_t *d, const hcsb__vsd_chain_t *ch,
                     hcsb__vsd_hdr_t *h, hcsb__vsd_conn_t *c) {
  uint8_t raw[HCSB__VSD_HDR_LEN];
  h->src_cid = HCSB__VSD_HOST_CID;
  h->dst_cid = d->guest_cid;
  h->type = HCSB__VSD_TYPE_STREAM;
  hcsb__vsd_hdr_encode(h, raw);
  hcsb__vsd_chain_write(ch, 0, raw, sizeof raw);
  if (h->len > 0) {
    size_t first = HCSB__VSD_TXBUF - c->tx_off;
    if (first > h->len) first = h->len;
    hcsb__vsd_chain_write(ch, HCSB__VSD_HDR_LEN, c->txbuf + c->tx_off, first);
    hcsb__vsd_chain_write(ch, HCSB__VSD_HDR_LEN + first, c->txbuf,
                          h->len - first);
    tx_consume(c, h->len);
  }
  /* Every packet on a connection carries fwd_cnt: this one tells the
   * guest about it (and only one that goes out does). */
  if (c != NULL) c->fwd_cnt_sent = h->fwd_cnt;
  d->stats.host_pkts++;
  return HCSB__VSD_HDR_LEN + h->len;
}

uint32_t hcsb__vsd_guest_rx(hcsb__vsd_dev_t *d, const hcsb__vsd_chain_t *ch) {
  hcsb__vsd_hdr_t h;
  hcsb__vsd_conn_t *c;
  uint32_t n;

  if (ch->wlen < HCSB__VSD_HDR_LEN || !hcsb__vsd_rx_pending(d)) return 0;
  memset(&h, 0, sizeof h);
  if (d->rst_len > 0) {
    h.src_port = d->rst[d->rst_head].local_port;
    h.dst_port = d->rst[d->rst_head].peer_port;
    h.op = HCSB__VSD_OP_RST;
    d->rst_head = (d->rst_head + 1) % RST_CAP;
    d->rst_len--;
    return emit(d, ch, &h, NULL);
  }
  c = d->qhead;
  queue_remove(d, c);
  h.src_port = c->local_port;
  h.dst_port = c->peer_port;
  h.buf_alloc = HCSB__VSD_BUF_ALLOC;
  h.fwd_cnt = c->fwd_cnt;
  if (c->owe & HCSB__VSD_OWE_REQUEST) {
    h.op = HCSB__VSD_OP_REQUEST;
    c->owe &= ~HCSB__VSD_OWE_REQUEST;
  } else if (c->owe & HCSB__VSD_OWE_RESPONSE) {
    h.op = HCSB__VSD_OP_RESPONSE;
    c->owe &= ~HCSB__VSD_OWE_RESPONSE;
  } else if (can_send_data(c) && ch->wlen > HCSB__VSD_HDR_LEN) {
    uint64_t room = ch->wlen - HCSB__VSD_HDR_LEN;
    n = credit(c);
    if (n > c->tx_len) n = (uint32_t)c->tx_len;
    if (n > room) n = (uint32_t)room;
    h.op = HCSB__VSD_OP_RW;
    h.len = n;
    c->owe &= ~HCSB__VSD_OWE_CREDIT_UPDATE; /* this packet carries it */
    emit(d, ch, &h, c);
    c->tx_cnt += n;
    if (c->tx_len > 0 && credit(c) == 0) c->owe |= HCSB__VSD_OWE_CREDIT_REQUEST;
    update_reading(d, c);
    requeue(d, c);
    return HCSB__VSD_HDR_LEN + n;
  } else if (c->owe & HCSB__VSD_OWE_CREDIT_UPDATE) {
    h.op = HCSB__VSD_OP_CREDIT_UPDATE;
    c->owe &= ~HCSB__VSD_OWE_CREDIT_UPDATE;
  } else if (c->owe & HCSB__VSD_OWE_CREDIT_REQUEST) {
    h.op = HCSB__VSD_OP_CREDIT_REQUEST;
    c->owe &= ~HCSB__VSD_OWE_CREDIT_REQUEST;
  } else if (shutdown_due(c)) {
    /* The host stopped sending and its data is out. */
    h.op = HCSB__VSD_OP_SHUTDOWN;
    h.flags = HCSB__VSD_SHUT_SEND;
    c->shut_sent = 1;
  } else {
    /* Data is waiting but this buffer has no room past the header: the
     * guest gets the buffer back empty and the data waits for the next. */
    requeue(d, c);
    return 0;
  }
  n = emit(d, ch, &h, c);
  if (!maybe_finish(d, c)) requeue(d, c);
  return n;
}

hcsb__vsd_conn_t *hcsb__vsd_host_accept(hcsb__vsd_dev_t *d, void *io) {
  hcsb__vsd_conn_t *c = conn_new(d, HCSB__VSD_HANDSHAKE);
  if (c == NULL) {
    d->stats.refused_conns++;
    return NULL;
  }
  c->io = io;
  update_reading(d, c);
  return c;
}

void hcsb__vsd_host_connected(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c,
                              int status) {
  if (status != 0) {
    d->stats.refused_conns++;
    conn_free(d, c, 1);
    return;
  }
  c->state = HCSB__VSD_ESTABLISHED;
  c->owe |= HCSB__VSD_OWE_RESPONSE;
  update_reading(d, c);
  requeue(d, c);
}

void hcsb__vsd_host_read_space(hcsb__vsd_conn_t *c, uint8_t **p, size_t *len) {
  *p = NULL;
  *len = read_room(c, read_allowance(c));
  if (*len == 0) return;
  if (c->txbuf == NULL && (c->txbuf = malloc(HCSB__VSD_TXBUF)) == NULL) {
    *len = 0;
    return;
  }
  *p = c->txbuf + (c->tx_off + c->tx_len) % HCSB__VSD_TXBUF;
}

_Static_assert(HCSB__VSD_TIMEOUT_MS == 10000, "the timeout phrase names it");

/* A host client's connection ends over its CONNECT line: say why first. */
static void refuse(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c, const char *why,
                   size_t len) {
  d->stats.bad_lines++;
  d->ops->refused(d->ctx, c, why, c->txbuf, len);
  conn_free(d, c, 0);
}

/* During the handshake the line sits at the start of txbuf (tx_off 0). */
static void handshake(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  const char *why = NULL;
  size_t line = 0;
  uint32_t port = 0;
  int r = hcsb__vsd_connect_line(c->txbuf, c->tx_len, &line, &port, &why);

  if (r == 0) return;
  if (r < 0) {
    refuse(d, c, why, line);
    return;
  }
  /* At most nconns ports can be taken for this guest port, so this ends. */
  do {
    c->local_port = d->next_port++;
    if (d->next_port == UINT32_MAX) d->next_port = HCSB__VSD_PORT_BASE;
  } while (hcsb__vsd_find(d, c->local_port, port) != NULL);
  c->peer_port = port;
  table_insert(d, c);
  /* What came after the line is the first data for the guest. */
  tx_consume(c, line);
  c->state = HCSB__VSD_REQUESTED;
  c->deadline = 0;
  c->owe |= HCSB__VSD_OWE_REQUEST;
  update_reading(d, c);
  requeue(d, c);
}

void hcsb__vsd_host_read(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c, size_t n) {
  size_t max = read_room(c, read_allowance(c));
  if (n > max) n = max; /* the socket layer never reads past the space */
  c->tx_len += n;
  if (c->state == HCSB__VSD_HANDSHAKE) {
    handshake(d, c);
    return;
  }
  update_reading(d, c);
  requeue(d, c);
}

void hcsb__vsd_host_eof(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  /* A client that connects and leaves says nothing worth a log line; one
   * that leaves half a line does. */
  if (c->state == HCSB__VSD_HANDSHAKE && c->tx_len > 0) {
    refuse(d, c, "the client closed before the end of its CONNECT line",
           c->tx_len);
    return;
  }
  if (c->state != HCSB__VSD_ESTABLISHED) {
    conn_free(d, c, c->state != HCSB__VSD_HANDSHAKE);
    return;
  }
  c->host_eof = 1;
  update_reading(d, c);
  if (!maybe_finish(d, c)) requeue(d, c);
}

void hcsb__vsd_host_error(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c) {
  conn_free(d, c, c->state != HCSB__VSD_HANDSHAKE);
}

void hcsb__vsd_host_read_failed(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c,
                                int err) {
  if (err != -ENOBUFS) {
    hcsb__vsd_host_error(d, c);
    return;
  }
  /* Our memory, not the socket, failed: a read would find no room again
   * at once, so stop and let the sweep try later. */
  if (c->reading) {
    c->reading = 0;
    d->ops->reading(d->ctx, c, 0);
  }
  c->read_retry = 1;
}

void hcsb__vsd_host_written(hcsb__vsd_dev_t *d, hcsb__vsd_conn_t *c,
                            size_t counted) {
  c->writing--;
  c->fwd_cnt += (uint32_t)counted;
  if (flush_writes(d, c) != 0) {
    conn_free(d, c, 1);
    return;
  }
  maybe_shutdown_host(d, c);
  /* The guest only sees fwd_cnt in our packets: tell it about the space
   * before its view of our buffer runs low, or it stalls. */
  if (c->rx_cnt - c->fwd_cnt_sent >= HCSB__VSD_BUF_ALLOC / 2 &&
      c->fwd_cnt != c->fwd_cnt_sent)
    c->owe |= HCSB__VSD_OWE_CREDIT_UPDATE;
  if (!maybe_finish(d, c)) requeue(d, c);
}

void hcsb__vsd_sweep(hcsb__vsd_dev_t *d, uint64_t now_ms) {
  hcsb__vsd_conn_t *c = d->all, *next;
  for (; c != NULL; c = next) {
    next = c->anext;
    if (c->read_retry) {
      c->read_retry = 0;
      update_reading(d, c);
    }
    if (c->state != HCSB__VSD_HANDSHAKE && c->state != HCSB__VSD_REQUESTED)
      continue;
    if (c->deadline == 0) {
      c->deadline = now_ms + HCSB__VSD_TIMEOUT_MS;
    } else if (now_ms >= c->deadline) {
      d->stats.timeouts++;
      if (c->state == HCSB__VSD_HANDSHAKE)
        refuse(d, c, "no complete CONNECT line within 10 s", c->tx_len);
      else
        conn_free(d, c, 1);
    }
  }
}
