/* Error classification (hcsbridge/errors.h): every documented code against
 * every predicate and its errdefs class, table-driven. */
#include <errno.h>
#include <string.h>

#include <hcsbridge.h>
#include <hcsbridge/errors.h>

#include "runner.h"

enum {
  NE = 1 << 0, /* not exist */
  ST = 1 << 1, /* already stopped */
  CL = 1 << 2, /* already closed */
  TO = 1 << 3, /* timeout */
  NS = 1 << 4, /* not supported */
  EX = 1 << 5, /* already exists */
  IS = 1 << 6, /* invalid state */
  PE = 1 << 7, /* pending */
  AD = 1 << 8  /* access denied */
};

typedef struct expect_s {
  int status; /* HCSB_EGUEST: hresult applies */
  uint32_t hresult;
  unsigned flags;
  hcsb_errclass_t cls;
} expect_t;

#define HR(h, f, c) \
  { HCSB_EGUEST, (h), (f), HCSB_ERRCLASS_##c }
#define EN(e, f, c) \
  { -(e), 0, (f), HCSB_ERRCLASS_##c }

static const expect_t rows[] = {
    /* The four the issue names, then the rest of protocol.md §10.2. */
    HR(0xC037010Eu, NE, NOT_FOUND),
    HR(0x80070490u, NE | ST, NOT_FOUND),
    HR(0xC0370109u, TO, DEADLINE_EXCEEDED),
    HR(0x80004001u, NS, NOT_IMPLEMENTED),
    HR(0x00000490u, NE | ST, NOT_FOUND),
    HR(0xC0370110u, ST, FAILED_PRECONDITION),
    HR(0x80370110u, ST, FAILED_PRECONDITION),
    HR(0x8037011Fu, ST, FAILED_PRECONDITION),
    HR(0x00000006u, CL, UNAVAILABLE),
    HR(0xC0370106u, 0, UNAVAILABLE),
    HR(0xC037010Bu, NS, NOT_IMPLEMENTED),
    HR(0xC037010Cu, NS, NOT_IMPLEMENTED),
    HR(0xC037010Du, NS, NOT_IMPLEMENTED),
    HR(0x00000032u, NS, NOT_IMPLEMENTED),
    HR(0x0000000Du, NS, NOT_IMPLEMENTED),
    HR(0x0000007Fu, NS, NOT_IMPLEMENTED),
    HR(0xC037010Fu, EX, ALREADY_EXISTS),
    HR(0x80370105u, IS, FAILED_PRECONDITION),
    HR(0xC0370105u, IS, FAILED_PRECONDITION),
    HR(0xC0370103u, PE, UNKNOWN),
    HR(0x00000005u, AD, PERMISSION_DENIED),
    HR(0x80070057u, 0, INVALID_ARGUMENT),
    HR(0x80004005u, 0, UNKNOWN),
    HR(0x12345678u, 0, UNKNOWN),
    HR(0x00000000u, 0, UNKNOWN), /* a failure without a cause */
    EN(ENOENT, NE, NOT_FOUND),
    EN(ESRCH, NE | ST, NOT_FOUND),
    EN(ENOTCONN, CL, UNAVAILABLE),
    EN(EBADF, CL, UNAVAILABLE),
    EN(ECONNRESET, CL, UNAVAILABLE),
    EN(EPIPE, CL, UNAVAILABLE),
    EN(ECHILD, CL, UNAVAILABLE), /* a spawned guest exited */
    EN(ETIMEDOUT, TO, DEADLINE_EXCEEDED),
    EN(ENOTSUP, NS, NOT_IMPLEMENTED),
    EN(ENOSYS, NS, NOT_IMPLEMENTED),
    EN(EAFNOSUPPORT, 0, NOT_IMPLEMENTED),
    EN(EEXIST, EX, ALREADY_EXISTS),
    EN(EBUSY, IS, FAILED_PRECONDITION),
    EN(ENODATA, IS, FAILED_PRECONDITION),
    EN(EALREADY, 0, FAILED_PRECONDITION),
    EN(EINPROGRESS, PE, UNKNOWN),
    EN(EACCES, AD, PERMISSION_DENIED),
    EN(EPERM, AD, PERMISSION_DENIED),
    EN(ECANCELED, 0, CANCELED),
    EN(EINVAL, 0, INVALID_ARGUMENT),
    EN(ENAMETOOLONG, 0, INVALID_ARGUMENT),
    EN(E2BIG, 0, INVALID_ARGUMENT),
    EN(ERANGE, 0, INVALID_ARGUMENT),
    EN(ENOMEM, 0, RESOURCE_EXHAUSTED),
    EN(ENOBUFS, 0, RESOURCE_EXHAUSTED),
    EN(EMFILE, 0, RESOURCE_EXHAUSTED),
    EN(ENFILE, 0, RESOURCE_EXHAUSTED),
    EN(ENOSPC, 0, RESOURCE_EXHAUSTED),
    EN(EPROTO, 0, INTERNAL),
    EN(EMSGSIZE, 0, INTERNAL),
    EN(EIO, 0, UNKNOWN),
    {0, 0, 0, HCSB_ERRCLASS_OK},
};

static unsigned flags_of(int status, const hcsb_guest_error_t *gerr) {
  return (hcsb_is_not_exist(status, gerr) ? NE : 0) |
         (hcsb_is_already_stopped(status, gerr) ? ST : 0) |
         (hcsb_is_already_closed(status, gerr) ? CL : 0) |
         (hcsb_is_timeout(status, gerr) ? TO : 0) |
         (hcsb_is_not_supported(status, gerr) ? NS : 0) |
         (hcsb_is_already_exists(status, gerr) ? EX : 0) |
         (hcsb_is_invalid_state(status, gerr) ? IS : 0) |
         (hcsb_is_pending(status, gerr) ? PE : 0) |
         (hcsb_is_access_denied(status, gerr) ? AD : 0);
}

static void test_table(void) {
  size_t i;

  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const expect_t *e = &rows[i];
    hcsb_guest_error_t g = {e->hresult, "", 0, NULL};
    unsigned got = flags_of(e->status, &g);
    if (got != e->flags || hcsb_error_class(e->status, &g) != e->cls)
      hcsb_test_fail(__FILE__, __LINE__,
                     "row %zu (status %d hresult 0x%08X): flags 0x%x want "
                     "0x%x, class %s want %s",
                     i, e->status, (unsigned)e->hresult, got, e->flags,
                     hcsb_errclass_name(hcsb_error_class(e->status, &g)),
                     hcsb_errclass_name(e->cls));
    if (e->status == HCSB_EGUEST && e->hresult != 0)
      CHECK_EQ(hcsb_hresult_class(e->hresult), e->cls);
  }
}

static void test_hresult_only_with_eguest(void) {
  /* The HRESULT is the guest's word only when the status says so: a local
   * timeout with a stale gerr is still a timeout and nothing else. */
  hcsb_guest_error_t nf = {HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, "", 0, NULL};

  CHECK_EQ(hcsb_is_not_exist(-ETIMEDOUT, &nf), 0);
  CHECK_EQ(hcsb_is_timeout(-ETIMEDOUT, &nf), 1);
  CHECK_EQ(hcsb_error_class(-ETIMEDOUT, &nf), HCSB_ERRCLASS_DEADLINE_EXCEEDED);
  CHECK_EQ(hcsb_is_not_exist(0, &nf), 0);
  CHECK_EQ(hcsb_error_class(0, &nf), HCSB_ERRCLASS_OK);
  /* HCSB_EGUEST without a gerr names no cause. */
  CHECK_EQ(hcsb_error_class(HCSB_EGUEST, NULL), HCSB_ERRCLASS_UNKNOWN);
  CHECK_EQ(flags_of(HCSB_EGUEST, NULL), 0);
  /* Positive statuses are not errno values. */
  CHECK_EQ(hcsb_error_class(ENOENT, NULL), HCSB_ERRCLASS_UNKNOWN);
  CHECK_EQ(hcsb_is_not_exist(ENOENT, NULL), 0);
  CHECK_EQ(hcsb_error_class(-2147483647 - 1, NULL), HCSB_ERRCLASS_UNKNOWN);
  CHECK_EQ(hcsb_hresult_class(0), HCSB_ERRCLASS_OK);
}

static void test_class_names(void) {
  static const char *const want[] = {"OK",
                                     "Unknown",
                                     "NotFound",
                                     "AlreadyExists",
                                     "FailedPrecondition",
                                     "Unavailable",
                                     "NotImplemented",
                                     "DeadlineExceeded",
                                     "Canceled",
                                     "InvalidArgument",
                                     "PermissionDenied",
                                     "ResourceExhausted",
                                     "Internal"};
  size_t i;

  for (i = 0; i < sizeof want / sizeof want[0]; i++)
    CHECK_STR(hcsb_errclass_name((hcsb_errclass_t)i), want[i]);
  CHECK_STR(hcsb_errclass_name((hcsb_errclass_t)99), "Unknown");
  CHECK_STR(hcsb_errclass_name((hcsb_errclass_t)-1), "Unknown");
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(table),
      TEST_ENTRY(hresult_only_with_eguest),
      TEST_ENTRY(class_names),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
