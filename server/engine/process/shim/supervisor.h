/* The supervisor's inputs (supervisor.c): what the build left for it. */
#ifndef PG_SUPERVISOR_H
#define PG_SUPERVISOR_H
#include "shim.h"

struct sup_config {
  pid_t child;             /* the container's first process */
  int client_fd;           /* whoever started the shim (descriptor 3), or -1 */
  int master;              /* the terminal's master side, or -1 without a terminal */
  int sync_fd;             /* the link to the container's process (its errors at the gate) */
  const char *socket_path; /* where later clients connect, or NULL */
  const char *exit_file;   /* where the exit status is written for whoever comes later */
  size_t scrollback;
  int daemon;              /* stay after the exit until released or the linger time passed */
  int linger_seconds;
};

/* Runs until the container has exited and its status was collected; returns its exit code. */
int supervise(const struct sup_config *cfg);
#endif
