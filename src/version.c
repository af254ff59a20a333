#include <hcsbridge/common.h>

unsigned int hcsb_version(void) {
  return HCSB_VERSION_HEX;
}

const char *hcsb_version_string(void) {
  return HCSB_VERSION_STRING;
}
