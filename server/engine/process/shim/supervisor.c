/*
 * The shim after the container is built: its supervisor, for as long as it
 * lives. One client at a time speaks to it (the server, or `playground run`):
 * first whoever started the shim, on descriptor 3; later anyone who connects
 * to its Unix socket (a restarted server). A new connection replaces the old.
 *
 * It holds the container's terminal: what the container prints is sent to
 * the client and kept in a ring of recent output (the scrollback), so a client
 * that connects later sees what the screen showed. When there is no client,
 * or the client asked for a pause, it stops reading once the ring is full:
 * the program printing then blocks in write(), and a detached `yes` costs no
 * CPU at all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "supervisor.h"

/* Output waiting for a slow client beyond this stops the reading of the terminal. */
#define OUT_HIGH (256 * 1024)
/*
 * Keystrokes waiting for the terminal beyond this are dropped (the client is
 * told: F_INPUT_FULL). The client is always read, so that what follows a
 * flood of input (a kill, a release) still arrives.
 */
#define IN_HIGH (1024 * 1024)

struct buffer {
  char *data;
  size_t len, cap;
};

static void buffer_add(struct buffer *b, const void *data, size_t len) {
  if (b->len + len > b->cap) {
    b->cap = (b->len + len) * 2;
    b->data = realloc(b->data, b->cap);
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
}

static void buffer_drop(struct buffer *b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

static void buffer_frame(struct buffer *b, char type, const void *data, size_t len) {
  unsigned char header[5] = {(unsigned char)type, len >> 24, len >> 16, len >> 8, len};
  buffer_add(b, header, 5);
  buffer_add(b, data, len);
}

/* The ring of recent output. */
struct ring {
  char *data;
  size_t size, start, len;
};

static void ring_add(struct ring *r, const char *data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    size_t at = (r->start + r->len) % r->size;
    r->data[at] = data[i];
    if (r->len < r->size) r->len++;
    else r->start = (r->start + 1) % r->size;
  }
}

static struct state {
  const struct sup_config *cfg;
  int client;           /* -1 when none */
  int client_streams;   /* the client receives output as it comes */
  int paused;           /* the client asked for a pause */
  struct frame_reader reader;
  struct buffer out, in;
  int input_full;           /* F_INPUT_FULL was sent, F_INPUT_ROOM not yet */
  struct ring ring;
  unsigned long long total; /* bytes of output so far */
  size_t unread_detached;   /* output read while nobody streamed */
  int listener, master, sync_fd, sigfd;
  enum { S_READY, S_RUNNING, S_EXITED } phase;
  int exit_code;
  int released;
  uint64_t exited_at;
} st;

static void send_frame(char type, const void *data, size_t len) {
  if (st.client >= 0) buffer_frame(&st.out, type, data, len);
}

static void send_printf(char type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_printf(char type, const char *fmt, ...) {
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  send_frame(type, text, (size_t)n);
}

static void drop_client(void) {
  if (st.client < 0) return;
  close(st.client);
  st.client = -1;
  st.client_streams = 0;
  st.paused = 0;
  st.out.len = 0;
  st.in.len = 0;
  st.input_full = 0;
  frame_reader_reset(&st.reader);
  st.unread_detached = 0;
}

static void hello(void) {
  const char *phase = st.phase == S_READY ? "ready" : st.phase == S_RUNNING ? "running" : "exited";
  if (st.phase == S_EXITED) send_printf(F_HELLO, "%s:%d %d %llu", phase, st.exit_code, (int)st.cfg->child, st.total);
  else send_printf(F_HELLO, "%s %d %llu", phase, (int)st.cfg->child, st.total);
}

static void accept_client(void) {
  int fd = accept4(st.listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  drop_client();
  st.client = fd;
  hello();
}

static void read_output(void) {
  char chunk[16384];
  ssize_t n = read(st.master, chunk, sizeof chunk);
  if (n <= 0) {
    /* EIO: every process holding the terminal is gone. */
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close(st.master);
    st.master = -1;
    return;
  }
  ring_add(&st.ring, chunk, (size_t)n);
  st.total += (unsigned long long)n;
  if (st.client >= 0 && st.client_streams) send_frame(F_OUTPUT, chunk, (size_t)n);
  else st.unread_detached += (size_t)n;
}

static void send_replay(void) {
  char head[32];
  int n = snprintf(head, sizeof head, "%llu\n", st.total);
  size_t len = (size_t)n + st.ring.len;
  char *payload = malloc(len);
  memcpy(payload, head, (size_t)n);
  for (size_t i = 0; i < st.ring.len; i++) payload[n + i] = st.ring.data[(st.ring.start + i) % st.ring.size];
  send_frame(F_REPLAY, payload, len);
  free(payload);
  st.client_streams = 1;
  st.unread_detached = 0;
}

static void handle_frame(char type, char *payload, size_t len) {
  int cols, rows, sig;
  switch (type) {
    case F_GATE:
      if (st.phase != S_READY) break;
      /* The container's process takes it from here; an error it meets comes back on the sync link. */
      if (frame_write(st.sync_fd, F_GATE, payload, len) < 0) logmsg("gate: the container's process is gone");
      st.phase = S_RUNNING;
      /* A daemon's container is someone's now: it lives on if the server restarts. */
      if (st.cfg->daemon) prctl(PR_SET_PDEATHSIG, 0);
      break;
    case F_INPUT:
      if (st.master < 0 || st.in.len >= IN_HIGH) break;
      buffer_add(&st.in, payload, len);
      if (st.in.len >= IN_HIGH && !st.input_full) {
        st.input_full = 1;
        send_frame(F_INPUT_FULL, NULL, 0);
      }
      break;
    case F_WINSIZE:
      if (st.master >= 0 && sscanf(payload, "%d %d", &cols, &rows) == 2 && cols > 0 && rows > 0 && cols < 10000 && rows < 10000) {
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        ioctl(st.master, TIOCSWINSZ, &ws);
      }
      break;
    case F_PAUSE:
      st.paused = 1;
      break;
    case F_RESUME:
      st.paused = 0;
      st.client_streams = 1;
      st.unread_detached = 0;
      break;
    case F_REPLAY_ASK:
      send_replay();
      break;
    case F_KILL:
      if (parse_int(payload, &sig) == 0 && sig > 0 && sig < 65 && st.phase != S_EXITED) kill(st.cfg->child, sig);
      break;
    case F_RELEASE:
      st.released = 1;
      break;
    default:
      logmsg("unknown frame %c from the client", type);
  }
}

static void read_client(void) {
  char type;
  char *payload;
  size_t len;
  for (;;) {
    int got = frame_read(st.client, &st.reader, &type, &payload, &len);
    if (got == 0) return;
    if (got < 0) {
      drop_client();
      return;
    }
    handle_frame(type, payload, len);
    if (st.client < 0) return;
  }
}

/* Messages from the container's process: errors at the gate; EOF once it exec'd (or died). */
static void read_sync(void) {
  char type;
  char *payload;
  size_t len;
  static struct frame_reader r;
  static uint64_t last_step_at;
  static int failed;
  int got = frame_read(st.sync_fd, &r, &type, &payload, &len);
  if (got < 0) {
    /* The descriptor closes at exec (it is close-on-exec), or when the process dies. */
    if (st.phase == S_RUNNING && !failed) send_printf(F_STARTED, "%llu", (unsigned long long)(now_us() - last_step_at));
    close(st.sync_fd);
    st.sync_fd = -1;
    frame_reader_reset(&r);
    return;
  }
  if (got == 1 && (type == F_ERROR || type == F_STEP)) send_frame(type, payload, len);
  if (got == 1 && type == F_STEP) last_step_at = now_us();
  if (got == 1 && type == F_ERROR) failed = 1;
}

static void record_exit(int status) {
  st.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  st.phase = S_EXITED;
  st.exited_at = now_us();
  /* What the terminal still holds comes before the news of the exit. */
  if (st.master >= 0) {
    fcntl(st.master, F_SETFL, O_NONBLOCK);
    while (st.master >= 0) {
      unsigned long long before = st.total;
      read_output();
      if (st.total == before) break;
    }
  }
  send_printf(F_EXITED, "%d", st.exit_code);
  if (st.cfg->exit_file) {
    char text[16];
    snprintf(text, sizeof text, "%d\n", st.exit_code);
    int fd = open(st.cfg->exit_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      write_all(fd, text, strlen(text));
      close(fd);
    }
  }
}

static int make_listener(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) return logmsg("socket path too long: %s", path), -1;
  strcpy(addr.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  mode_t old = umask(0177); /* the socket is root's only */
  int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
  umask(old);
  if (rc < 0 || listen(fd, 4) < 0) return logmsg("listen on %s: %s", path, strerror(errno)), close(fd), -1;
  return fd;
}

int supervise(const struct sup_config *cfg) {
  memset(&st, 0, sizeof st);
  st.cfg = cfg;
  st.client = cfg->client_fd;
  st.client_streams = 1; /* whoever started the shim sees everything from the first byte */
  st.master = cfg->master;
  st.sync_fd = cfg->sync_fd;
  st.listener = -1;
  st.phase = S_READY;
  st.ring.size = cfg->scrollback;
  st.ring.data = malloc(st.ring.size);
  if (st.client >= 0) fcntl(st.client, F_SETFL, O_NONBLOCK);
  if (st.master >= 0) fcntl(st.master, F_SETFL, O_NONBLOCK);
  fcntl(st.sync_fd, F_SETFL, O_NONBLOCK);
  if (cfg->socket_path && (st.listener = make_listener(cfg->socket_path)) < 0) return 125;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  st.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  /* The child may have exited before the signal was blocked. */
  int status;
  if (waitpid(cfg->child, &status, WNOHANG) == cfg->child) record_exit(status);

  send_printf(F_READY, "%d", (int)cfg->child);

  for (;;) {
    if (st.phase == S_EXITED) {
      int delivered = st.client >= 0 && st.out.len == 0;
      if (st.released && delivered) break;
      if (!cfg->daemon && delivered) break;
      if (st.client < 0 && now_us() - st.exited_at > (uint64_t)cfg->linger_seconds * 1000000u) break;
    }
    struct pollfd fds[6];
    int n = 0, i_listen = -1, i_client = -1, i_master = -1, i_sync = -1, i_sig;
    fds[i_sig = n++] = (struct pollfd){st.sigfd, POLLIN, 0};
    if (st.listener >= 0) fds[i_listen = n++] = (struct pollfd){st.listener, POLLIN, 0};
    if (st.client >= 0) {
      short ev = POLLIN | (st.out.len > 0 ? POLLOUT : 0);
      fds[i_client = n++] = (struct pollfd){st.client, ev, 0};
    }
    if (st.master >= 0) {
      /* A client that streams takes the output (unless it paused, or its buffer is full); without one, the ring fills once. */
      int streaming = st.client >= 0 && st.client_streams;
      int room = streaming ? !st.paused && st.out.len < OUT_HIGH : st.unread_detached < st.ring.size;
      short ev = (room && st.phase != S_READY ? POLLIN : 0) | (st.in.len > 0 ? POLLOUT : 0);
      fds[i_master = n++] = (struct pollfd){st.master, ev, 0};
    }
    if (st.sync_fd >= 0) fds[i_sync = n++] = (struct pollfd){st.sync_fd, POLLIN, 0};
    int timeout = st.phase == S_EXITED ? 1000 : -1;
    if (poll(fds, (nfds_t)n, timeout) < 0) {
      if (errno == EINTR) continue;
      return 125;
    }
    /* The link to the container's process first: its news of the exec comes before the news of the exit. */
    if (i_sync >= 0 && fds[i_sync].revents) read_sync();
    if (fds[i_sig].revents) {
      struct signalfd_siginfo info;
      while (read(st.sigfd, &info, sizeof info) == sizeof info) {
      }
      /* The exec's news may still be in the link: take it before the exit. */
      while (st.sync_fd >= 0 && st.phase == S_RUNNING && poll(&(struct pollfd){st.sync_fd, POLLIN, 0}, 1, 0) > 0) read_sync();
      if (st.phase != S_EXITED && waitpid(cfg->child, &status, WNOHANG) == cfg->child) record_exit(status);
    }
    if (i_master >= 0 && st.master >= 0) {
      if (fds[i_master].revents & POLLOUT && st.in.len > 0) {
        ssize_t w = write(st.master, st.in.data, st.in.len);
        if (w > 0) buffer_drop(&st.in, (size_t)w);
        if (st.input_full && st.in.len < IN_HIGH / 2) {
          st.input_full = 0;
          send_frame(F_INPUT_ROOM, NULL, 0);
        }
      }
      if (fds[i_master].revents & (POLLIN | POLLHUP | POLLERR)) read_output();
    }
    if (i_client >= 0 && st.client >= 0) {
      if (fds[i_client].revents & POLLOUT && st.out.len > 0) {
        ssize_t w = write(st.client, st.out.data, st.out.len);
        if (w > 0) buffer_drop(&st.out, (size_t)w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR) drop_client();
      }
      if (st.client >= 0 && fds[i_client].revents & (POLLIN | POLLHUP | POLLERR)) read_client();
    }
    if (i_listen >= 0 && fds[i_listen].revents & POLLIN) accept_client();
  }
  if (cfg->socket_path) unlink(cfg->socket_path);
  return st.exit_code;
}
