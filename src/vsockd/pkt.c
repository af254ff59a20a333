/* The virtio-vsock packet header (virtio 1.2, 5.10.6): 44 bytes, packed,
 * little-endian. */
#include "vsockd/vsockd.h"

void hcsb__vsd_hdr_encode(const hcsb__vsd_hdr_t *h,
                          uint8_t out[HCSB__VSD_HDR_LEN]) {
  hcsb__vsd_put64(out, h->src_cid);
  hcsb__vsd_put64(out + 8, h->dst_cid);
  hcsb__vsd_put32(out + 16, h->src_port);
  hcsb__vsd_put32(out + 20, h->dst_port);
  hcsb__vsd_put32(out + 24, h->len);
  hcsb__vsd_put16(out + 28, h->type);
  hcsb__vsd_put16(out + 30, h->op);
  hcsb__vsd_put32(out + 32, h->flags);
  hcsb__vsd_put32(out + 36, h->buf_alloc);
  hcsb__vsd_put32(out + 40, h->fwd_cnt);
}

void hcsb__vsd_hdr_decode(const uint8_t in[HCSB__VSD_HDR_LEN],
                          hcsb__vsd_hdr_t *h) {
  h->src_cid = hcsb__vsd_le64(in);
  h->dst_cid = hcsb__vsd_le64(in + 8);
  h->src_port = hcsb__vsd_le32(in + 16);
  h->dst_port = hcsb__vsd_le32(in + 20);
  h->len = hcsb__vsd_le32(in + 24);
  h->type = hcsb__vsd_le16(in + 28);
  h->op = hcsb__vsd_le16(in + 30);
  h->flags = hcsb__vsd_le32(in + 32);
  h->buf_alloc = hcsb__vsd_le32(in + 36);
  h->fwd_cnt = hcsb__vsd_le32(in + 40);
}
