/* Frames: the messages between the shim and its client (see shim.h for the types). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "shim.h"

/* Blocking write of one frame (the socket to the container process; a client's socket is buffered by the supervisor). */
int frame_write(int fd, char type, const void *data, size_t len) {
  unsigned char header[5] = {(unsigned char)type, len >> 24, len >> 16, len >> 8, len};
  struct iovec iov[2] = {{header, 5}, {(void *)data, len}};
  size_t total = 5 + len, done = 0;
  while (done < total) {
    ssize_t n = writev(fd, iov, 2);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)n;
    for (int i = 0; i < 2 && n > 0; i++) {
      size_t take = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
      iov[i].iov_base = (char *)iov[i].iov_base + take;
      iov[i].iov_len -= take;
      n -= (ssize_t)take;
    }
  }
  return 0;
}

int frame_printf(int fd, char type, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  return frame_write(fd, type, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

void frame_reader_reset(struct frame_reader *r) {
  free(r->payload);
  memset(r, 0, sizeof *r);
}

int frame_read(int fd, struct frame_reader *r, char *type, char **payload, size_t *len) {
  /* A frame handed out by the previous call is done with now. */
  if (r->have_header == 5 && r->have_payload == r->length && r->payload) {
    free(r->payload);
    r->payload = NULL;
    r->have_header = 0;
  }
  while (r->have_header < 5) {
    ssize_t n = read(fd, r->header + r->have_header, 5 - r->have_header);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    r->have_header += (size_t)n;
    if (r->have_header == 5) {
      r->length = ((size_t)r->header[1] << 24) | ((size_t)r->header[2] << 16) | ((size_t)r->header[3] << 8) | r->header[4];
      if (r->length > FRAME_MAX) return -1;
      r->payload = malloc(r->length + 1);
      r->have_payload = 0;
    }
  }
  while (r->have_payload < r->length) {
    ssize_t n = read(fd, r->payload + r->have_payload, r->length - r->have_payload);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    r->have_payload += (size_t)n;
  }
  r->payload[r->length] = '\0'; /* text payloads can be read as strings */
  *type = (char)r->header[0];
  *payload = r->payload;
  *len = r->length;
  return 1;
}
