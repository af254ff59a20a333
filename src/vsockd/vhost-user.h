/* hcsb-vsockd: the vhost-user request codes and header flags (QEMU
 * docs/interop/vhost-user.rst), for vhost.c and for the fuzz target that
 * plays QEMU against it.  Short names, so include this only where
 * vhost-user messages are built or read. */
#ifndef HCSB_VSOCKD_VHOST_USER_H
#define HCSB_VSOCKD_VHOST_USER_H

enum {
  GET_FEATURES = 1,
  SET_FEATURES = 2,
  SET_OWNER = 3,
  RESET_OWNER = 4,
  SET_MEM_TABLE = 5,
  SET_LOG_BASE = 6,
  SET_LOG_FD = 7,
  SET_VRING_NUM = 8,
  SET_VRING_ADDR = 9,
  SET_VRING_BASE = 10,
  GET_VRING_BASE = 11,
  SET_VRING_KICK = 12,
  SET_VRING_CALL = 13,
  SET_VRING_ERR = 14,
  GET_PROTOCOL_FEATURES = 15,
  SET_PROTOCOL_FEATURES = 16,
  GET_QUEUE_NUM = 17,
  SET_VRING_ENABLE = 18,
  GET_CONFIG = 24,
  SET_CONFIG = 25,
  RESET_DEVICE = 34,
  GET_MAX_MEM_SLOTS = 36,
};

/* The header's flags: the protocol version (1), a reply, and a request
 * for a REPLY_ACK answer. */
#define FLAG_VERSION 1u
#define FLAG_REPLY 4u
#define FLAG_NEED_REPLY 8u

#endif
