/* Small helpers: time, messages, whole-file reads and writes, number parsing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "shim.h"

uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + ts.tv_nsec / 1000;
}

int log_fd = 2;
char last_message[512];

/* Messages go to the shim's log (its stderr unless the plan names a log file). */
void logmsg(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  dprintf(log_fd, "pg-shim[%d]: %s\n", getpid(), line);
  snprintf(last_message, sizeof last_message, "%s", line);
}

int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Write text into an existing file (a cgroup file, a /proc file): one write, as the kernel wants it. */
int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

char *read_whole(const char *path, size_t max, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, have = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (have == cap) {
      if (cap >= max) { free(buf); close(fd); errno = EFBIG; return NULL; }
      cap *= 2;
      buf = realloc(buf, cap);
    }
    ssize_t n = read(fd, buf + have, cap - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { int e = errno; free(buf); close(fd); errno = e; return NULL; }
    if (n == 0) break;
    have += (size_t)n;
  }
  close(fd);
  *len = have;
  return buf;
}

int parse_u64(const char *s, unsigned long long *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-') return -1;
  *out = v;
  return 0;
}

int parse_int(const char *s, int *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < -2147483647L || v > 2147483647L) return -1;
  *out = (int)v;
  return 0;
}
