/* Reading a small file whole (readfile.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim/readfile.h"

int hcsb__shim_read_file(const char *path, size_t max, char **out,
                         size_t *len) {
  struct stat st;
  size_t got = 0;
  char *text;
  int fd;

  *out = NULL;
  *len = 0;
  /* O_NONBLOCK: opening a FIFO would wait for a writer; a regular file's
   * reads are the same with it. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -errno;
  if (fstat(fd, &st) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return -EINVAL;
  }
  if ((uint64_t)st.st_size > (uint64_t)max) {
    close(fd);
    return -EFBIG;
  }
  text = malloc((size_t)st.st_size + 1);
  if (text == NULL) {
    close(fd);
    return -ENOMEM;
  }
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      free(text);
      return -EIO;
    }
    if (n == 0) break; /* it shrank */
    got += (size_t)n;
  }
  close(fd);
  text[got] = '\0';
  *out = text;
  *len = got;
  return 0;
}
