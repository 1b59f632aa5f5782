/*
 * pg-shim run PLAN_FILE
 *
 * Builds the container the plan describes and supervises it (see shim.h).
 * Descriptor 3, when open, is the link to whoever started the shim: step
 * timings, "ready", errors and the container's output go there as frames.
 *
 * pg-shim enter ...
 *
 * Runs a program inside a container that runs already (enter.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "supervisor.h"

#define CHILD_STACK (1 << 20)

static struct plan plan;
static int client = -1;
static int sync_pair[2], fd_pair[2];
static char *seccomp;
static size_t seccomp_len;
static pid_t child = -1;

static int child_fn(void *arg) {
  (void)arg;
  close(sync_pair[0]);
  close(fd_pair[0]);
  if (client >= 0) close(client);
  container_main(&plan, sync_pair[1], fd_pair[1], seccomp, seccomp_len);
}

/* The "clone" operation: the container's first process, in its new namespaces, waiting for release. */
static pid_t make_child(void) {
  char *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  child = clone(child_fn, stack + CHILD_STACK, flags, NULL);
  if (child < 0) logmsg("clone: %s", strerror(errno));
  close(sync_pair[1]);
  close(fd_pair[1]);
  return child;
}

static int release_child(void) {
  return write_all(sync_pair[0], "g", 1);
}

/* Forward a failure to the client, stop whatever was started, and leave. */
static void abandon(const char *message) __attribute__((noreturn));
static void abandon(const char *message) {
  logmsg("%s", message);
  if (client >= 0) frame_write(client, F_ERROR, message, strlen(message));
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
  _exit(125);
}

/* Receives the terminal's master side, which the container's process opened in its own devpts. */
static int receive_master(void) {
  char byte;
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  if (recvmsg(fd_pair[0], &msg, MSG_CMSG_CLOEXEC) != 1) return -1;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  return fd;
}

/* Relay the container process's step timings until it waits at its gate. */
static void await_gate(void) {
  struct frame_reader reader = {0};
  char type;
  char *payload;
  size_t len;
  for (;;) {
    int got = frame_read(sync_pair[0], &reader, &type, &payload, &len);
    if (got < 0) abandon("the container's process ended while it was being built");
    if (got == 0) continue;
    if (type == F_ERROR) abandon(payload);
    if (type == F_READY) break;
    if (client >= 0) frame_write(client, type, payload, len);
  }
  frame_reader_reset(&reader);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "enter") == 0) return enter_main(argc - 2, argv + 2);
  if (argc != 3 || strcmp(argv[1], "run") != 0) {
    fprintf(stderr, "usage: pg-shim run PLAN_FILE | pg-shim enter ARGS...\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (fcntl(3, F_GETFD) >= 0) client = 3;
  if (plan_load(argv[2], &plan) < 0) {
    char message[600];
    snprintf(message, sizeof message, "the plan could not be read: %s", last_message);
    abandon(message);
  }
  if (plan.log_file) {
    int fd = open(plan.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) log_fd = fd;
  }
  /*
   * Until its gate opens, the container ends with whoever started it: a
   * server killed in the middle of a start leaves no half-built container
   * behind. A daemon's shim outlives its starter from the gate on (supervisor.c).
   */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (plan.daemon) signal(SIGHUP, SIG_IGN);
  if (plan.seccomp_file && !(seccomp = read_whole(plan.seccomp_file, 1 << 20, &seccomp_len))) abandon("the system-call filter could not be read");
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pair) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd_pair) < 0)
    abandon("socketpair failed");

  if (run_host_phase(&plan, client, make_child, release_child) < 0) {
    char message[600];
    snprintf(message, sizeof message, "building the container failed: %s", last_message);
    abandon(message);
  }
  await_gate();
  int master = -1;
  if (plan.tty && (master = receive_master()) < 0) abandon("the container's terminal did not arrive");
  close(fd_pair[0]);

  struct sup_config cfg = {
    .child = child,
    .client_fd = client,
    .master = master,
    .sync_fd = sync_pair[0],
    .socket_path = plan.socket_path,
    .exit_file = plan.exit_file,
    .scrollback = plan.scrollback,
    .daemon = plan.daemon,
    .linger_seconds = plan.linger_seconds,
  };
  return supervise(&cfg);
}
