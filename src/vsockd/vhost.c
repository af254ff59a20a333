/* The backend side of the vhost-user protocol (QEMU docs/interop/
 * vhost-user.rst) as far as QEMU's vhost-user-vsock device uses it: the
 * frontend owns the device and the event queue; we get the guest memory
 * table (one fd per region, mmapped here), rings 0 (rx) and 1 (tx) with
 * their kick and call eventfds, and answer the config space read, which
 * holds only the guest CID.
 *
 * Messages that need no answer get one anyway when the frontend sets
 * NEED_REPLY (REPLY_ACK): a u64, 0 for success.  Anything we do not
 * support is refused that way instead of ending the session, since QEMU
 * only sends what the features we offered allow. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsockd/vhost-user.h"
#include "vsockd/vsockd.h"

#define F_INDIRECT_DESC (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_PROTOCOL_FEATURES (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define OFFERED_FEATURES \
  (F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX | F_PROTOCOL_FEATURES)

#define PF_REPLY_ACK (1ull << 3)
#define PF_CONFIG (1ull << 9)
#define OFFERED_PROTOCOL (PF_REPLY_ACK | PF_CONFIG)

#define CONFIG_SPACE 8 /* struct virtio_vsock_config: le64 guest_cid */
#define CONFIG_MAX 256 /* the protocol's VhostUserConfig payload */
#define VRING_NOFD (1u << 8)

static const char *const names[] = {
    [GET_FEATURES] = "GET_FEATURES",
    [SET_FEATURES] = "SET_FEATURES",
    [SET_OWNER] = "SET_OWNER",
    [RESET_OWNER] = "RESET_OWNER",
    [SET_MEM_TABLE] = "SET_MEM_TABLE",
    [SET_LOG_BASE] = "SET_LOG_BASE",
    [SET_LOG_FD] = "SET_LOG_FD",
    [SET_VRING_NUM] = "SET_VRING_NUM",
    [SET_VRING_ADDR] = "SET_VRING_ADDR",
    [SET_VRING_BASE] = "SET_VRING_BASE",
    [GET_VRING_BASE] = "GET_VRING_BASE",
    [SET_VRING_KICK] = "SET_VRING_KICK",
    [SET_VRING_CALL] = "SET_VRING_CALL",
    [SET_VRING_ERR] = "SET_VRING_ERR",
    [GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
    [SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
    [GET_QUEUE_NUM] = "GET_QUEUE_NUM",
    [SET_VRING_ENABLE] = "SET_VRING_ENABLE",
    [GET_CONFIG] = "GET_CONFIG",
    [SET_CONFIG] = "SET_CONFIG",
    [RESET_DEVICE] = "RESET_DEVICE",
    [GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
};

const char *hcsb__vsd_vhost_name(uint32_t request) {
  if (request < sizeof names / sizeof names[0] && names[request] != NULL)
    return names[request];
  return "unknown";
}

void hcsb__vsd_vhost_init(hcsb__vsd_vhost_t *vh, uint64_t guest_cid) {
  memset(vh, 0, sizeof *vh);
  vh->guest_cid = guest_cid;
  for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++)
    vh->kick_fd[i] = vh->call_fd[i] = vh->err_fd[i] = -1;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void unmap_all(hcsb__vsd_vhost_t *vh) {
  for (unsigned i = 0; i < vh->mem.n; i++) munmap(vh->map[i], vh->map_len[i]);
  vh->mem.n = 0;
}

/* The watcher on a kick fd must go before the fd does: a closed number
 * can come back as another descriptor while still registered. */
static void drop_kick(hcsb__vsd_vhost_t *vh, unsigned i) {
  if (vh->kick_fd[i] >= 0 && vh->kick_closing) vh->kick_closing(vh, i);
  close_fd(&vh->kick_fd[i]);
}

static void stop_ring(hcsb__vsd_vhost_t *vh, unsigned i) {
  vh->vq[i].started = 0;
  drop_kick(vh, i);
  if (vh->ring_changed) vh->ring_changed(vh, i);
}

void hcsb__vsd_vhost_free(hcsb__vsd_vhost_t *vh) {
  for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++) {
    drop_kick(vh, i);
    close_fd(&vh->call_fd[i]);
    close_fd(&vh->err_fd[i]);
  }
  unmap_all(vh);
  /* As after init, for the next frontend. */
  memset(vh->vq, 0, sizeof vh->vq);
  vh->features = vh->protocol_features = 0;
}

/* Every region is checked against its file before anything is mapped:
 * a region past the end of its memfd would SIGBUS us on first touch. */
static int set_mem_table(hcsb__vsd_vhost_t *vh, const uint8_t *p, size_t n,
                         const int *fds, unsigned nfds) {
  hcsb__vsd_mem_t mem;
  void *map[HCSB__VSD_MAX_REGIONS];
  size_t map_len[HCSB__VSD_MAX_REGIONS];
  uint32_t count;
  unsigned i;

  if (n < 8) return -EINVAL;
  count = hcsb__vsd_le32(p);
  if (count == 0 || count > HCSB__VSD_MAX_REGIONS || count != nfds ||
      n != 8 + 32 * (size_t)count)
    return -EINVAL;
  memset(&mem, 0, sizeof mem);
  for (i = 0; i < count; i++) {
    const uint8_t *r = p + 8 + 32 * i;
    uint64_t gpa = hcsb__vsd_le64(r), size = hcsb__vsd_le64(r + 8);
    uint64_t uva = hcsb__vsd_le64(r + 16), off = hcsb__vsd_le64(r + 24);
    struct stat st;
    int bad = size == 0 || off > UINT64_MAX - size || gpa > UINT64_MAX - size ||
              uva > UINT64_MAX - size || off + size > SIZE_MAX ||
              fstat(fds[i], &st) != 0 ||
              (S_ISREG(st.st_mode) && off + size > (uint64_t)st.st_size);
    void *base = bad ? MAP_FAILED
                     : mmap(NULL, (size_t)(off + size), PROT_READ | PROT_WRITE,
                            MAP_SHARED, fds[i], 0);
    if (base == MAP_FAILED) {
      while (i-- > 0) munmap(map[i], map_len[i]);
      return -EINVAL;
    }
    map[i] = base;
    map_len[i] = (size_t)(off + size);
    mem.r[i].gpa = gpa;
    mem.r[i].size = size;
    mem.r[i].uva = uva;
    mem.r[i].host = (uint8_t *)base + off;
  }
  mem.n = count;
  unmap_all(vh);
  vh->mem = mem;
  memcpy(vh->map, map, sizeof map);
  memcpy(vh->map_len, map_len, sizeof map_len);
  return 0;
}

static void reset(hcsb__vsd_vhost_t *vh) {
  for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++) {
    stop_ring(vh, i);
    close_fd(&vh->call_fd[i]);
    close_fd(&vh->err_fd[i]);
    memset(&vh->vq[i], 0, sizeof vh->vq[i]);
  }
  unmap_all(vh);
  vh->features = vh->protocol_features = 0;
  if (vh->reset) vh->reset(vh);
}

/* SET_VRING_KICK/CALL/ERR: the ring index, and either one fd or the
 * "no fd" bit. */
static int set_vring_fd(hcsb__vsd_vhost_t *vh, uint32_t req, const uint8_t *p,
                        size_t n, int *fds, unsigned nfds) {
  if (n != 8) return -EINVAL;
  uint64_t v = hcsb__vsd_le64(p);
  unsigned i = (unsigned)(v & 0xff);
  int nofd = (v & VRING_NOFD) != 0;
  if (i >= HCSB__VSD_NQUEUES || nfds != (nofd ? 0u : 1u)) return -EINVAL;
  int fd = nofd ? -1 : fds[0];
  if (!nofd) fds[0] = -1; /* taken */
  if (req == SET_VRING_KICK) {
    drop_kick(vh, i);
    vh->kick_fd[i] = fd;
    vh->vq[i].started = 1;
    /* Without protocol features a ring is enabled as soon as it starts. */
    if (!(vh->features & F_PROTOCOL_FEATURES)) vh->vq[i].enabled = 1;
    if (vh->ring_changed) vh->ring_changed(vh, i);
  } else if (req == SET_VRING_CALL) {
    close_fd(&vh->call_fd[i]);
    vh->call_fd[i] = fd;
  } else {
    close_fd(&vh->err_fd[i]);
    vh->err_fd[i] = fd;
  }
  return 0;
}

static size_t reply(uint8_t *out, uint32_t req, const void *payload, size_t n) {
  hcsb__vsd_put32(out, req);
  hcsb__vsd_put32(out + 4, FLAG_VERSION | FLAG_REPLY);
  hcsb__vsd_put32(out + 8, (uint32_t)n);
  memcpy(out + HCSB__VSD_MSG_HDR, payload, n);
  return HCSB__VSD_MSG_HDR + n;
}

static size_t reply_u64(uint8_t *out, uint32_t req, uint64_t v) {
  uint8_t b[8];
  hcsb__vsd_put64(b, v);
  return reply(out, req, b, sizeof b);
}

int hcsb__vsd_vhost_handle(hcsb__vsd_vhost_t *vh, const uint8_t *msg,
                           size_t len, int *fds, unsigned nfds, uint8_t *out,
                           size_t *out_len) {
  uint32_t req, flags, size;
  const uint8_t *p = msg + HCSB__VSD_MSG_HDR;
  int rc = 0, answered = 0;
  unsigned i;

  *out_len = 0;
  if (len < HCSB__VSD_MSG_HDR) goto proto;
  req = hcsb__vsd_le32(msg);
  flags = hcsb__vsd_le32(msg + 4);
  size = hcsb__vsd_le32(msg + 8);
  if ((flags & 3u) != FLAG_VERSION || size != len - HCSB__VSD_MSG_HDR ||
      size > HCSB__VSD_MSG_MAX)
    goto proto;

  switch (req) {
    case GET_FEATURES:
      *out_len = reply_u64(out, req, OFFERED_FEATURES);
      answered = 1;
      break;
    case GET_PROTOCOL_FEATURES:
      *out_len = reply_u64(out, req, OFFERED_PROTOCOL);
      answered = 1;
      break;
    case GET_QUEUE_NUM:
      *out_len = reply_u64(out, req, HCSB__VSD_NQUEUES);
      answered = 1;
      break;
    case GET_MAX_MEM_SLOTS:
      *out_len = reply_u64(out, req, HCSB__VSD_MAX_REGIONS);
      answered = 1;
      break;
    case SET_FEATURES:
    case SET_PROTOCOL_FEATURES: {
      if (size != 8) {
        rc = -EINVAL;
        break;
      }
      uint64_t v = hcsb__vsd_le64(p);
      uint64_t offered =
          req == SET_FEATURES ? OFFERED_FEATURES : OFFERED_PROTOCOL;
      if (v & ~offered) {
        rc = -EINVAL;
      } else if (req == SET_FEATURES) {
        vh->features = v;
        for (i = 0; i < HCSB__VSD_NQUEUES; i++) {
          vh->vq[i].indirect = (v & F_INDIRECT_DESC) != 0;
          vh->vq[i].event_idx = (v & F_EVENT_IDX) != 0;
        }
      } else {
        vh->protocol_features = v;
      }
      break;
    }
    case SET_OWNER:
      break;
    case RESET_OWNER:
    case RESET_DEVICE:
      reset(vh);
      break;
    case SET_MEM_TABLE:
      rc = set_mem_table(vh, p, size, fds, nfds);
      break;
    case SET_VRING_NUM:
    case SET_VRING_BASE:
    case SET_VRING_ENABLE: {
      if (size != 8) {
        rc = -EINVAL;
        break;
      }
      uint32_t idx = hcsb__vsd_le32(p), num = hcsb__vsd_le32(p + 4);
      if (idx >= HCSB__VSD_NQUEUES) {
        rc = -EINVAL;
      } else if (req == SET_VRING_NUM) {
        if (num == 0 || num > HCSB__VSD_MAX_QUEUE || (num & (num - 1)))
          rc = -EINVAL;
        else
          vh->vq[idx].num = (uint16_t)num;
      } else if (req == SET_VRING_BASE) {
        if (num > 0xffff) {
          rc = -EINVAL; /* packed rings are not offered */
        } else {
          vh->vq[idx].last_avail = (uint16_t)num;
          /* We complete every chain in the pass that takes it, so nothing
           * is in flight: the used index is the avail one. */
          vh->vq[idx].used_idx = (uint16_t)num;
          vh->vq[idx].broken = 0;
        }
      } else {
        vh->vq[idx].enabled = num != 0;
        if (vh->ring_changed) vh->ring_changed(vh, idx);
      }
      break;
    }
    case GET_VRING_BASE: {
      if (size != 8 || hcsb__vsd_le32(p) >= HCSB__VSD_NQUEUES) goto proto;
      uint32_t idx = hcsb__vsd_le32(p);
      uint8_t b[8];
      hcsb__vsd_put32(b, idx);
      hcsb__vsd_put32(b + 4, vh->vq[idx].last_avail);
      stop_ring(vh, idx);
      close_fd(&vh->call_fd[idx]);
      *out_len = reply(out, req, b, sizeof b);
      answered = 1;
      break;
    }
    case SET_VRING_ADDR: {
      if (size != 40 || hcsb__vsd_le32(p) >= HCSB__VSD_NQUEUES) {
        rc = -EINVAL;
        break;
      }
      hcsb__vsd_vring_t *vq = &vh->vq[hcsb__vsd_le32(p)];
      vq->desc_uva = hcsb__vsd_le64(p + 8);
      vq->used_uva = hcsb__vsd_le64(p + 16);
      vq->avail_uva = hcsb__vsd_le64(p + 24);
      vq->addr_set = 1;
      vq->broken = 0;
      break;
    }
    case SET_VRING_KICK:
    case SET_VRING_CALL:
    case SET_VRING_ERR:
      rc = set_vring_fd(vh, req, p, size, fds, nfds);
      break;
    case GET_CONFIG: {
      uint8_t space[CONFIG_MAX + 12];
      uint32_t off, n;
      if (size < 12) goto proto;
      off = hcsb__vsd_le32(p);
      n = hcsb__vsd_le32(p + 4);
      if (n > CONFIG_MAX || size != 12 + n) goto proto;
      memset(space, 0, sizeof space);
      memcpy(space, p, 12);
      for (i = 0; i < n; i++) {
        uint64_t at = (uint64_t)off + i;
        if (at < CONFIG_SPACE)
          space[12 + i] = (uint8_t)(vh->guest_cid >> (8 * at));
      }
      *out_len = reply(out, req, space, 12 + n);
      answered = 1;
      break;
    }
    case SET_CONFIG:
      /* guest_cid is read-only for the driver; nothing to store. */
      break;
    default:
      rc = -ENOTSUP;
  }
  for (i = 0; i < nfds; i++) close_fd(&fds[i]);
  if (vh->verbose) {
    /* Feature words are worth seeing: they say what the guest took. */
    char val[32] = "";
    if ((req == SET_FEATURES || req == SET_PROTOCOL_FEATURES) && size == 8)
      snprintf(val, sizeof val, " 0x%llx",
               (unsigned long long)hcsb__vsd_le64(p));
    fprintf(stderr, "hcsb-vsockd: vhost-user %s (%u)%s%s\n",
            hcsb__vsd_vhost_name(req), req, val, rc != 0 ? ": refused" : "");
  }
  if (!answered && (flags & FLAG_NEED_REPLY))
    *out_len = reply_u64(out, req, rc != 0);
  return 0;

proto:
  for (i = 0; i < nfds; i++) close_fd(&fds[i]);
  return -EPROTO;
}
