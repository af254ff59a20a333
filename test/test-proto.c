/* Protocol core, pure parts: identifiers and their names, the header
 * codec, status and HRESULT strings, GUIDs and hvsocket service IDs, and
 * the address syntax. */
#include <errno.h>
#include <string.h>

#include "proto/proto.h"
#include "runner.h"

/* ------------------------------------------------------------------------ */
/* Identifiers */

static const struct {
  uint32_t req, resp;
  const char *name, *resp_name;
} msgs[] = {
    {0x10100101u, 0x20100101u, "Create", "CreateResponse"},
    {0x10100201u, 0x20100201u, "Start", "StartResponse"},
    {0x10100301u, 0x20100301u, "ShutdownGraceful", "ShutdownGracefulResponse"},
    {0x10100401u, 0x20100401u, "ShutdownForced", "ShutdownForcedResponse"},
    {0x10100501u, 0x20100501u, "ExecuteProcess", "ExecuteProcessResponse"},
    {0x10100601u, 0x20100601u, "WaitForProcess", "WaitForProcessResponse"},
    {0x10100701u, 0x20100701u, "SignalProcess", "SignalProcessResponse"},
    {0x10100801u, 0x20100801u, "ResizeConsole", "ResizeConsoleResponse"},
    {0x10100901u, 0x20100901u, "GetProperties", "GetPropertiesResponse"},
    {0x10100a01u, 0x20100a01u, "ModifySettings", "ModifySettingsResponse"},
    {0x10100b01u, 0x20100b01u, "NegotiateProtocol",
     "NegotiateProtocolResponse"},
    {0x10100c01u, 0x20100c01u, "DumpStacks", "DumpStacksResponse"},
    {0x10100d01u, 0x20100d01u, "DeleteContainerState",
     "DeleteContainerStateResponse"},
    {0x10100e01u, 0x20100e01u, "UpdateContainer", "UpdateContainerResponse"},
    {0x10100f01u, 0x20100f01u, "LifecycleNotification",
     "LifecycleNotificationResponse"},
    {0x10200101u, 0x20200101u, "ModifyServiceSettings",
     "ModifyServiceSettingsResponse"},
};

static void test_msg_enum_values(void) {
  /* The public enum against protocol.md §3.5, one by one. */
  static const uint32_t enum_req[] = {HCSB_MSG_CREATE,
                                      HCSB_MSG_START,
                                      HCSB_MSG_SHUTDOWN_GRACEFUL,
                                      HCSB_MSG_SHUTDOWN_FORCED,
                                      HCSB_MSG_EXECUTE_PROCESS,
                                      HCSB_MSG_WAIT_FOR_PROCESS,
                                      HCSB_MSG_SIGNAL_PROCESS,
                                      HCSB_MSG_RESIZE_CONSOLE,
                                      HCSB_MSG_GET_PROPERTIES,
                                      HCSB_MSG_MODIFY_SETTINGS,
                                      HCSB_MSG_NEGOTIATE_PROTOCOL,
                                      HCSB_MSG_DUMP_STACKS,
                                      HCSB_MSG_DELETE_CONTAINER_STATE,
                                      HCSB_MSG_UPDATE_CONTAINER,
                                      HCSB_MSG_LIFECYCLE_NOTIFICATION,
                                      HCSB_MSG_MODIFY_SERVICE_SETTINGS};
  static const uint32_t enum_resp[] = {
      HCSB_MSG_CREATE_RESPONSE,
      HCSB_MSG_START_RESPONSE,
      HCSB_MSG_SHUTDOWN_GRACEFUL_RESPONSE,
      HCSB_MSG_SHUTDOWN_FORCED_RESPONSE,
      HCSB_MSG_EXECUTE_PROCESS_RESPONSE,
      HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE,
      HCSB_MSG_SIGNAL_PROCESS_RESPONSE,
      HCSB_MSG_RESIZE_CONSOLE_RESPONSE,
      HCSB_MSG_GET_PROPERTIES_RESPONSE,
      HCSB_MSG_MODIFY_SETTINGS_RESPONSE,
      HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE,
      HCSB_MSG_DUMP_STACKS_RESPONSE,
      HCSB_MSG_DELETE_CONTAINER_STATE_RESPONSE,
      HCSB_MSG_UPDATE_CONTAINER_RESPONSE,
      HCSB_MSG_LIFECYCLE_NOTIFICATION_RESPONSE,
      HCSB_MSG_MODIFY_SERVICE_SETTINGS_RESPONSE};
  size_t i;

  for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
    CHECK_U64(enum_req[i], msgs[i].req);
    CHECK_U64(enum_resp[i], msgs[i].resp);
  }
  CHECK_U64(HCSB_MSG_NOTIFY_CONTAINER, 0x30100101u);
  CHECK_U64(HCSB_MSG_TYPE_MASK | HCSB_MSG_CATEGORY_MASK | HCSB_MSG_ID_MASK |
                HCSB_MSG_VERSION_MASK,
            0xFFFFFFFFu);
  CHECK_U64((HCSB_MSG_WAIT_FOR_PROCESS & HCSB_MSG_ID_MASK) >> 8, 6);
  CHECK_U64(HCSB_MSG_MODIFY_SERVICE_SETTINGS & HCSB_MSG_CATEGORY_MASK,
            HCSB_MSG_CATEGORY_COMPUTE_SERVICE);
}

static void test_msg_response_type(void) {
  size_t i;

  for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
    CHECK_U64(hcsb_msg_response_type(msgs[i].req), msgs[i].resp);
  /* Unknown identifiers keep everything but the top nibble (protocol.md §3.6).
   */
  CHECK_U64(hcsb_msg_response_type(0x10109901u), 0x20109901u);
  CHECK_U64(hcsb_msg_response_type(0x10100b02u), 0x20100b02u);
  CHECK_U64(hcsb_msg_response_type(0), 0x20000000u);
  CHECK_U64(hcsb_msg_response_type(0x20100101u), 0x20100101u);
  CHECK_U64(hcsb_msg_response_type(0xFFFFFFFFu), 0x2FFFFFFFu);
}

static void test_msg_names(void) {
  size_t i;

  for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
    CHECK_STR(hcsb_msg_name(msgs[i].req), msgs[i].name);
    CHECK_STR(hcsb_msg_name(msgs[i].resp), msgs[i].resp_name);
  }
  CHECK_STR(hcsb_msg_name(0x30100101u), "ContainerNotification");
  CHECK(hcsb_msg_name(0) == NULL);
  CHECK(hcsb_msg_name(0x20000000u) == NULL);
  CHECK(hcsb_msg_name(0x10109901u) == NULL); /* message id 0x99 */
  CHECK(hcsb_msg_name(0x10100b02u) == NULL); /* version 2 */
  CHECK(hcsb_msg_name(0x10101001u) == NULL); /* message id 16 */
  CHECK(hcsb_msg_name(0x10100001u) == NULL); /* message id 0 */
  CHECK(hcsb_msg_name(0x10200201u) == NULL); /* service id 2 */
  CHECK(hcsb_msg_name(0x10300101u) == NULL); /* category 3 */
  CHECK(hcsb_msg_name(0x30100201u) == NULL); /* other notification */
  CHECK(hcsb_msg_name(0x40100101u) == NULL);
}

/* ------------------------------------------------------------------------ */
/* Header */

static void test_header_appendix_a(void) {
  static const uint8_t req_hdr[16] = {0x01, 0x0b, 0x10, 0x10, 0x7d, 0, 0, 0,
                                      0,    0,    0,    0,    0,    0, 0, 0};
  static const uint8_t resp_hdr[16] = {
      0x01, 0x0b, 0x10, 0x20, 0x56, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  static const char body[] =
      "{\"ContainerId\":\"\",\"ActivityId\":\"00000000-0000-0000-0000-"
      "000000000000\",\"MinimumVersion\":4,\"MaximumVersion\":4}\n";
  hcsb__hdr_t h = {HCSB_MSG_NEGOTIATE_PROTOCOL, 125, 0}, d;
  uint8_t out[16];
  hcsb__buf_t b = HCSB__BUF_INIT;
  hcsb_request_t req;

  hcsb__hdr_encode(out, &h);
  CHECK_MEM(out, req_hdr, 16);
  hcsb__hdr_decode(resp_hdr, &d);
  CHECK_U64(d.type, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE);
  CHECK_EQ(d.size, 342);
  CHECK_U64(d.id, 0);

  /* hcsshim's exact frame, sent as a raw body: 109-byte body, Size 125. */
  CHECK_EQ(sizeof(body) - 1, 109);
  memset(&req, 0, sizeof(req));
  req.type = HCSB_MSG_NEGOTIATE_PROTOCOL;
  req.raw_body = body;
  req.raw_len = sizeof(body) - 1;
  CHECK_EQ(hcsb__request_encode(&b, 0, &req), 0);
  CHECK_EQ(b.len, 125);
  CHECK_MEM(b.data, req_hdr, 16);
  CHECK_MEM(b.data + 16, body, 109);
  hcsb__buf_free(&b);
}

static void test_header_byte_order(void) {
  static const uint8_t want[16] = {0x04, 0x03, 0x02, 0x01, 0x08, 0x07,
                                   0x06, 0x05, 0x10, 0x0f, 0x0e, 0x0d,
                                   0x0c, 0x0b, 0x0a, 0x09};
  hcsb__hdr_t h = {0x01020304u, 0x05060708u, 0x090a0b0c0d0e0f10ull}, d;
  uint8_t out[16];

  hcsb__hdr_encode(out, &h);
  CHECK_MEM(out, want, 16);
  hcsb__hdr_decode(out, &d);
  CHECK_U64(d.type, h.type);
  CHECK_U64(d.size, h.size);
  CHECK_U64(d.id, h.id);

  hcsb__frame_set_id(out, UINT64_MAX);
  hcsb__hdr_decode(out, &d);
  CHECK_U64(d.id, UINT64_MAX);
  CHECK_U64(d.type, 0x01020304u); /* untouched */
  CHECK_U64(d.size, 0x05060708u);
  hcsb__frame_set_id(out, 0x8000000000000001ull);
  CHECK(out[8] == 0x01 && out[15] == 0x80);
}

/* ------------------------------------------------------------------------ */
/* Status and HRESULT strings */

static void test_strerror(void) {
  static const int listed[] = {0,           HCSB_EGUEST, -ETIMEDOUT, -ECANCELED,
                               -ECONNRESET, -EPIPE,      -EPROTO,    -EMSGSIZE,
                               -ENOTCONN,   -ENOBUFS,    -ENOMEM,    -EINVAL,
                               -ENOTSUP,    -ECHILD,     -4095};
  size_t i, j;

  for (i = 0; i < sizeof(listed) / sizeof(listed[0]); i++) {
    const char *s = hcsb_strerror(listed[i]);
    CHECK(s != NULL);
    CHECK(strcmp(s, "unknown error") != 0);
    /* Every listed status reads differently. */
    for (j = 0; j < i; j++) CHECK(strcmp(s, hcsb_strerror(listed[j])) != 0);
  }
  CHECK_STR(hcsb_strerror(0), "success");
  CHECK_STR(hcsb_strerror(-4095), "end of file");
  CHECK_STR(hcsb_strerror(-ETIMEDOUT), "operation timed out");
  CHECK_STR(hcsb_strerror(HCSB_EGUEST), "the guest returned an error");
  CHECK_STR(hcsb_strerror(-ECONNREFUSED), "connection refused");
  CHECK_STR(hcsb_strerror(-99999), "unknown error");
  CHECK_STR(hcsb_strerror(5), "unknown error");
  CHECK_STR(hcsb_strerror(-2147483647 - 1), "unknown error");
}

static void test_hresult_names(void) {
  static const struct {
    uint32_t hr;
    const char *name;
  } t[] = {
      {0x00000000u, "S_OK"},
      {0x80004001u, "E_NOTIMPL"},
      {0x80004005u, "E_FAIL"},
      {0x80070057u, "E_INVALIDARG"},
      {0x80070490u, "ERROR_NOT_FOUND"},
      {0xC0370109u, "VmcomputeTimeout"},
      {0xC037010Bu, "VmcomputeUnknownMessage"},
      {0xC037010Cu, "VmcomputeUnsupportedProtocolVersion"},
      {0xC037010Du, "VmcomputeInvalidJson"},
      {0xC037010Eu, "VmcomputeSystemNotFound"},
      {0xC037010Fu, "VmcomputeSystemAlreadyExists"},
      {0xC0370110u, "VmcomputeSystemAlreadyStopped"},
      {0x80370105u, "VmcomputeInvalidState"},
      {0xC0370103u, "VmcomputeOperationPending"},
      {0xC0370105u, "VmcomputeOperationInvalidState"},
      {0xC0370106u, "VmcomputeUnexpectedExit"},
      {0x80370110u, "VmcomputeSystemAlreadyStoppedHr"},
      {0x8037011Fu, "ProcessAlreadyStopped"},
      {0x490u, "ERROR_NOT_FOUND"},
      {0x32u, "ERROR_NOT_SUPPORTED"},
      {0xDu, "ERROR_INVALID_DATA"},
      {0x5u, "ERROR_ACCESS_DENIED"},
      {0x6u, "ERROR_INVALID_HANDLE"},
      {0x7Fu, "ERROR_PROC_NOT_FOUND"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    CHECK_STR(hcsb_hresult_name(t[i].hr), t[i].name);
  CHECK_STR(hcsb_hresult_name(HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND),
            "VmcomputeSystemNotFound");
  CHECK(hcsb_hresult_name(0xC0370104u) == NULL);
  CHECK(hcsb_hresult_name(0xFFFFFFFFu) == NULL);
  CHECK(hcsb_hresult_name(1) == NULL);
}

static void test_guest_error_format(void) {
  hcsb_guest_error_t e = {0xC037010Eu, "container x not found", 0, NULL};
  const char *want =
      "guest error 0xC037010E (VmcomputeSystemNotFound): container x not found";
  char buf[128], small[12];
  int n;

  n = hcsb_guest_error_format(&e, buf, sizeof(buf));
  CHECK_STR(buf, want);
  CHECK_EQ(n, strlen(want));
  /* snprintf semantics: truncated, NUL-terminated, full length returned. */
  memset(small, 'x', sizeof(small));
  CHECK_EQ(hcsb_guest_error_format(&e, small, sizeof(small)), strlen(want));
  CHECK_STR(small, "guest error");
  CHECK_EQ(hcsb_guest_error_format(&e, NULL, 0), strlen(want));

  e.hresult = 0x12345678u;
  e.message = "boom";
  hcsb_guest_error_format(&e, buf, sizeof(buf));
  CHECK_STR(buf, "guest error 0x12345678: boom");
  e.message = "";
  hcsb_guest_error_format(&e, buf, sizeof(buf));
  CHECK_STR(buf, "guest error 0x12345678");
  e.hresult = 0xC037010Cu;
  e.message = NULL;
  hcsb_guest_error_format(&e, buf, sizeof(buf));
  CHECK_STR(buf,
            "guest error 0xC037010C (VmcomputeUnsupportedProtocolVersion)");
}

/* ------------------------------------------------------------------------ */
/* GUIDs */

static void test_guid(void) {
  char a[37], b[37];
  size_t i;

  CHECK(hcsb__guid_valid("00000000-0000-0000-0000-000000000000"));
  CHECK(hcsb__guid_valid("70a75da0-0c7b-49e9-9157-80727d7d28da"));
  CHECK(hcsb__guid_valid("70A75DA0-0C7B-49E9-9157-80727D7D28DA"));
  CHECK(!hcsb__guid_valid(NULL));
  CHECK(!hcsb__guid_valid(""));
  CHECK(!hcsb__guid_valid("70a75da0-0c7b-49e9-9157-80727d7d28d"));
  CHECK(!hcsb__guid_valid("70a75da0-0c7b-49e9-9157-80727d7d28da0"));
  CHECK(!hcsb__guid_valid("70a75da0x0c7b-49e9-9157-80727d7d28da"));
  CHECK(!hcsb__guid_valid("70a75da0-0c7b-49e9-9157-80727d7d28dg"));
  CHECK(!hcsb__guid_valid("{70a75da0-0c7b-49e9-9157-80727d7d28da}"));

  hcsb__guid_generate(a);
  hcsb__guid_generate(b);
  CHECK_EQ(strlen(a), 36);
  CHECK(hcsb__guid_valid(a));
  CHECK(strcmp(a, b) != 0);
  CHECK(a[14] == '4'); /* version 4 */
  CHECK(strchr("89ab", a[19]) != NULL);
  for (i = 0; i < 36; i++) CHECK(!(a[i] >= 'A' && a[i] <= 'F'));
}

static void test_hvsock_service_id(void) {
  static const uint8_t bridge_bytes[16] = {0x00, 0x00, 0x00, 0x40, 0xcb, 0xfa,
                                           0xe6, 0x11, 0xbd, 0x58, 0x64, 0x00,
                                           0x6a, 0x79, 0x86, 0xd3};
  char s[37];
  uint8_t bytes[16];
  uint32_t port = 0;

  hcsb_hvsock_service_id(HCSB_PORT_BRIDGE, s);
  CHECK_STR(s, "40000000-facb-11e6-bd58-64006a7986d3");
  hcsb_hvsock_service_id_bytes(HCSB_PORT_BRIDGE, bytes);
  CHECK_MEM(bytes, bridge_bytes, 16);
  hcsb_hvsock_service_id(109, s);
  CHECK_STR(s, "0000006d-facb-11e6-bd58-64006a7986d3");
  hcsb_hvsock_service_id(0xFFFFFFFFu, s);
  CHECK_STR(s, "ffffffff-facb-11e6-bd58-64006a7986d3");
  hcsb_hvsock_service_id_bytes(0x40000001u, bytes);
  CHECK(bytes[0] == 0x01 && bytes[3] == 0x40 && bytes[4] == 0xcb);

  CHECK_EQ(hcsb_hvsock_port_from_service_id(
               "40000000-facb-11e6-bd58-64006a7986d3", &port),
           0);
  CHECK_U64(port, 0x40000000u);
  CHECK_EQ(hcsb_hvsock_port_from_service_id(
               "40000003-FACB-11E6-BD58-64006A7986D3", &port),
           0);
  CHECK_U64(port, 0x40000003u);
  CHECK_EQ(hcsb_hvsock_port_from_service_id(
               "00000001-facb-11e6-bd58-64006a7986d3", &port),
           0);
  CHECK_U64(port, 1);

  port = 77;
  /* Windows GCS service, a near miss in each template part, bad shapes. */
  CHECK_EQ(hcsb_hvsock_port_from_service_id(
               "acef5661-84a1-4e44-856b-6245e69f4620", &port),
           -EINVAL);
  CHECK_EQ(hcsb_hvsock_port_from_service_id(
               "40000000-facc-11e6-bd58-64006a7986d3", &port),
           -EINVAL);
  CHECK_EQ(hcsb_hvsock_port_from_service_id(
               "40000000-facb-11e7-bd58-64006a7986d3", &port),
           -EINVAL);
  CHECK_EQ(hcsb_hvsock_port_from_service_id(
               "40000000-facb-11e6-bd58-64006a7986d4", &port),
           -EINVAL);
  CHECK_EQ(hcsb_hvsock_port_from_service_id(
               "40000000-facb-11e6-bd58-64006a7986d3x", &port),
           -EINVAL);
  CHECK_EQ(hcsb_hvsock_port_from_service_id("40000000", &port), -EINVAL);
  CHECK_EQ(hcsb_hvsock_port_from_service_id(NULL, &port), -EINVAL);
  CHECK_EQ(port, 77);
}

/* ------------------------------------------------------------------------ */
/* Addresses */

static hcsb_addr_t parse_ok(const char *s) {
  hcsb_addr_t a;
  int r = hcsb_addr_parse(s, &a);

  if (r != 0) hcsb_test_fail(__FILE__, __LINE__, "parse(%s) = %d", s, r);
  return a;
}

static void test_addr_vsock(void) {
  hcsb_addr_t a;

  a = parse_ok("vsock://ANY");
  CHECK_EQ(a.transport, HCSB_TRANSPORT_VSOCK);
  CHECK_EQ(a.listen, 1);
  CHECK_U64(a.cid, HCSB_VSOCK_CID_ANY);
  CHECK_U64(a.port, 0x40000000u);
  CHECK_EQ(a.timeout_ms, 120000);
  CHECK_EQ(a.has_peer_cid, 0);
  CHECK_STR(a.stdio_dir, "");

  a = parse_ok("vsock://any:1234");
  CHECK_U64(a.cid, HCSB_VSOCK_CID_ANY);
  CHECK_U64(a.port, 1234);
  a = parse_ok("vsock://3:0x40000000?peer=7&timeout=0");
  CHECK_U64(a.cid, 3);
  CHECK_U64(a.port, 0x40000000u);
  CHECK_EQ(a.has_peer_cid, 1);
  CHECK_U64(a.peer_cid, 7);
  CHECK_EQ(a.timeout_ms, 0);
  a = parse_ok("vsock://4294967295:4294967295?timeout=4294967295");
  CHECK_U64(a.cid, HCSB_VSOCK_CID_ANY);
  CHECK_U64(a.port, 0xFFFFFFFFu);
  CHECK_U64(a.timeout_ms, 0xFFFFFFFFu);

  a = parse_ok("vsock+connect://3:5000?timeout=250");
  CHECK_EQ(a.listen, 0);
  CHECK_U64(a.cid, 3);
  CHECK_U64(a.port, 5000);
  CHECK_EQ(a.timeout_ms, 250);
  a = parse_ok("vsock+connect://16");
  CHECK_U64(a.port, HCSB_PORT_BRIDGE);
}

static void test_addr_other(void) {
  hcsb_addr_t a;

  a = parse_ok("hvsock+fc:///run/vm/v.sock");
  CHECK_EQ(a.transport, HCSB_TRANSPORT_HVSOCK_HYBRID);
  CHECK_EQ(a.listen, 1);
  CHECK_STR(a.path, "/run/vm/v.sock");
  CHECK_U64(a.port, HCSB_PORT_BRIDGE);
  a = parse_ok("hvsock+fc+connect:///run/vm/v.sock:52?timeout=5");
  CHECK_EQ(a.listen, 0);
  CHECK_STR(a.path, "/run/vm/v.sock");
  CHECK_U64(a.port, 52);
  CHECK_EQ(a.timeout_ms, 5);
  a = parse_ok("hvsock+fc:///a:b:7");
  CHECK_STR(a.path, "/a:b");
  CHECK_U64(a.port, 7);

  a = parse_ok("unix:///tmp/gcs.sock?stdio=/tmp/io&timeout=10");
  CHECK_EQ(a.transport, HCSB_TRANSPORT_UNIX);
  CHECK_EQ(a.listen, 1);
  CHECK_STR(a.path, "/tmp/gcs.sock");
  CHECK_STR(a.stdio_dir, "/tmp/io");
  CHECK_EQ(a.timeout_ms, 10);
  a = parse_ok("unix+connect://rel.sock");
  CHECK_EQ(a.listen, 0);
  CHECK_STR(a.path, "rel.sock");
  CHECK_EQ(a.fd, -1);

  a = parse_ok("fd://0");
  CHECK_EQ(a.transport, HCSB_TRANSPORT_FD);
  CHECK_EQ(a.fd, 0);
  a = parse_ok("fd://2147483647?stdio=/d");
  CHECK_EQ(a.fd, 2147483647);
  CHECK_STR(a.stdio_dir, "/d");

  a = parse_ok("spawn:gcs -use-inouterr -v4?x=1&y");
  CHECK_EQ(a.transport, HCSB_TRANSPORT_SPAWN);
  CHECK_EQ(a.listen, 0);
  CHECK_STR(a.command, "gcs -use-inouterr -v4?x=1&y");
  CHECK_EQ(a.timeout_ms, 120000);
}

static void test_addr_reject(void) {
  static const char *const bad[] = {
      "",
      "vsock",
      "vsock:/3",
      "VSOCK://3",
      "tcp://1.2.3.4:5",
      "vsock://",
      "vsock://:5",
      "vsock://3:",
      "vsock://-1",
      "vsock://+3",
      "vsock:// 3",
      "vsock://3 ",
      "vsock://3:4294967296",
      "vsock://99999999999999999999",
      "vsock://0x",
      "vsock://3:5:6",
      "vsock://ANYX",
      "vsock://3?",
      "vsock://3?timeout",
      "vsock://3?timeout=",
      "vsock://3?timeout=-1",
      "vsock://3?timeout=1.5",
      "vsock://3?timeout=4294967296",
      "vsock://3?timeout=1&timeout=2",
      "vsock://3?timeout=1&",
      "vsock://3?Timeout=1",
      "vsock://3?bogus=1",
      "vsock://3?stdio=/tmp",
      "vsock://3?peer=ANY",
      "vsock://3?peer=",
      "vsock+connect://ANY",
      "vsock+connect://3?peer=4",
      "hvsock+fc://",
      "hvsock+fc://:5",
      "hvsock+fc:///p:",
      "hvsock+fc:///p:x",
      "hvsock+fc:///p?stdio=/x",
      "hvsock+fc:///p?peer=3",
      "unix://",
      "unix://?timeout=1",
      "unix:///x?peer=3",
      "unix:///x?stdio=",
      "fd://",
      "fd://-1",
      "fd://0x3",
      "fd://2147483648",
      "fd://3x",
      "spawn:",
  };
  hcsb_addr_t a;
  size_t i;
  int r;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    memset(&a, 0x5a, sizeof(a));
    r = hcsb_addr_parse(bad[i], &a);
    if (r != -EINVAL)
      hcsb_test_fail(__FILE__, __LINE__, "parse(\"%s\") = %d", bad[i], r);
    CHECK(((unsigned char *)&a)[0] == 0x5a); /* untouched on failure */
  }
  CHECK_EQ(hcsb_addr_parse(NULL, &a), -EINVAL);
  CHECK_EQ(hcsb_addr_parse("unix:///x", NULL), -EINVAL);
}

static void test_addr_too_long(void) {
  char buf[HCSB_ADDR_COMMAND_MAX + 64];
  hcsb_addr_t a;

  /* 107 characters fit HCSB_ADDR_PATH_MAX with the NUL; 108 do not. */
  strcpy(buf, "unix://");
  memset(buf + 7, 'p', 107);
  buf[7 + 107] = '\0';
  CHECK_EQ(hcsb_addr_parse(buf, &a), 0);
  CHECK_EQ(strlen(a.path), 107);
  strcat(buf, "p");
  CHECK_EQ(hcsb_addr_parse(buf, &a), -ENAMETOOLONG);

  strcpy(buf, "unix:///s?stdio=");
  memset(buf + 16, 'd', 108);
  buf[16 + 108] = '\0';
  CHECK_EQ(hcsb_addr_parse(buf, &a), -ENAMETOOLONG);

  strcpy(buf, "spawn:");
  memset(buf + 6, 'c', HCSB_ADDR_COMMAND_MAX - 1);
  buf[6 + HCSB_ADDR_COMMAND_MAX - 1] = '\0';
  CHECK_EQ(hcsb_addr_parse(buf, &a), 0);
  strcat(buf, "c");
  CHECK_EQ(hcsb_addr_parse(buf, &a), -ENAMETOOLONG);
}

static void test_addr_format(void) {
  static const struct {
    const char *in, *out;
  } t[] = {
      {"vsock://ANY", "vsock://ANY:1073741824"},
      {"vsock://3:0x10?timeout=120000", "vsock://3:16"},
      {"vsock://any:5?timeout=0&peer=9", "vsock://ANY:5?peer=9&timeout=0"},
      {"vsock+connect://3", "vsock+connect://3:1073741824"},
      {"hvsock+fc:///v.sock", "hvsock+fc:///v.sock:1073741824"},
      {"hvsock+fc+connect:///a:b:2?timeout=9",
       "hvsock+fc+connect:///a:b:2?timeout=9"},
      {"unix:///s?stdio=/io", "unix:///s?stdio=/io"},
      {"unix+connect:///s?stdio=/io&timeout=1",
       "unix+connect:///s?timeout=1&stdio=/io"},
      {"fd://7", "fd://7"},
      {"spawn:sh -c 'x?y'", "spawn:sh -c 'x?y'"},
  };
  char buf[256];
  hcsb_addr_t a, b;
  size_t i;
  int n;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    a = parse_ok(t[i].in);
    n = hcsb_addr_format(&a, buf, sizeof(buf));
    CHECK_EQ(n, strlen(t[i].out));
    CHECK_STR(buf, t[i].out);
    /* Round trip: the formatted text parses back to the same address. */
    b = parse_ok(buf);
    CHECK_MEM(&a, &b, sizeof(a));
  }

  a = parse_ok("unix:///s");
  CHECK_EQ(hcsb_addr_format(&a, NULL, 0), 9);
  CHECK_EQ(hcsb_addr_format(&a, buf, 5), 9);
  CHECK_STR(buf, "unix");
  strcpy(a.path, "/with?question");
  CHECK_EQ(hcsb_addr_format(&a, buf, sizeof(buf)), -EINVAL);
  a.transport = (hcsb_transport_t)99;
  CHECK_EQ(hcsb_addr_format(&a, buf, sizeof(buf)), -EINVAL);
  CHECK_EQ(hcsb_addr_format(NULL, buf, sizeof(buf)), -EINVAL);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(msg_enum_values),
    TEST_ENTRY(msg_response_type),
    TEST_ENTRY(msg_names),
    TEST_ENTRY(header_appendix_a),
    TEST_ENTRY(header_byte_order),
    TEST_ENTRY(strerror),
    TEST_ENTRY(hresult_names),
    TEST_ENTRY(guest_error_format),
    TEST_ENTRY(guid),
    TEST_ENTRY(hvsock_service_id),
    TEST_ENTRY(addr_vsock),
    TEST_ENTRY(addr_other),
    TEST_ENTRY(addr_reject),
    TEST_ENTRY(addr_too_long),
    TEST_ENTRY(addr_format),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
