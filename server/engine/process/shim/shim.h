/*
 * pg-shim: the small program of ours that every container runs under.
 *
 * The TypeScript engine decides *what* a container is made of and writes it
 * down as a list of operations (a "plan"); this program carries the plan out
 * with the system calls themselves, and then stays, for as long as the
 * container lives, as its supervisor:
 *
 *   host phase      in a mount namespace of its own (so nothing it mounts is
 *                   seen by, or can leak onto, the host): copy the writable
 *                   layer's ext4 template, attach it to a loop device, mount
 *                   it, mount the overlay that is the container's root.
 *   container phase clone() the container's first process into new user,
 *                   mount, PID, network, UTS and IPC namespaces; map its ids,
 *                   put it in its cgroups; it builds its file system view
 *                   (/proc, /sys, /dev, masks), pivot_roots into the overlay
 *                   and waits at a "gate", running nothing of the image.
 *   the gate        when the engine says go (with the hostname, user,
 *                   environment and command), the process sets them, drops
 *                   to Docker's capabilities, sets no_new_privs, installs the
 *                   system-call filter and execs the command.
 *   supervision     it holds the container's terminal (and its recent
 *                   output), serves it over a Unix socket, and survives the
 *                   server: a restarted server connects again. It reports the
 *                   exit status and leaves once told to.
 *
 * Every operation reports how long it took, so students see where the time
 * goes ("How was this built?"). The same plan, rendered as shell commands, is
 * the lesson; see server/engine/process/launch-plan.ts.
 */
#ifndef PG_SHIM_H
#define PG_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the plan (plan.c) ------------------------------------------------ */

/* One operation: a name and its arguments, as the engine wrote them. */
struct op {
  const char *name;
  const char **args;
  int nargs;
  int step; /* the step of the lesson this operation belongs to */
};

struct plan {
  struct op *host;      /* run by the shim before clone, in its own mount namespace */
  int nhost;
  struct op *container; /* run by the container's first process before the gate */
  int ncontainer;
  /* settings */
  const char *root;     /* the overlay: the container's "/" */
  const char *socket_path;
  const char *exit_file;
  const char *seccomp_file;
  const char *log_file;  /* the shim's own messages (in pipe mode its stderr is the container's) */
  int tty;              /* a terminal (1) or the shim's own stdin/stdout/stderr (0) */
  unsigned short cols, rows;
  uint64_t keep_caps;   /* the capability bounding set the command keeps */
  int daemon;           /* outlive whoever started the shim */
  int linger_seconds;   /* after the exit, wait this long for someone to collect the status */
  size_t scrollback;    /* bytes of recent output kept for a client that connects later */
};

int plan_load(const char *file, struct plan *plan);

/* ---- messages between the shim and its client (frames.c) ------------- */

/* Every message is a frame: one type byte, a 32-bit big-endian length, the payload. */
enum frame_type {
  /* shim → client */
  F_STEP = 'T',    /* "STEP MICROSECONDS": a step of the plan is done */
  F_READY = 'R',   /* "PID": the container waits at its gate; PID is its first process on the host */
  F_ERROR = 'E',   /* a message: building the container failed */
  F_OUTPUT = 'O',  /* terminal output */
  F_REPLAY = 'Y',  /* the recent output, as asked for with F_REPLAY_ASK */
  F_STARTED = 'S', /* "MICROSECONDS": the command was exec'd, this long after the gate's last step */
  F_EXITED = 'X',  /* "CODE": the container's first process ended (128+n for signal n) */
  F_HELLO = 'H',   /* "STATE PID OUTPUT_TOTAL" to a client that connects */
  F_INPUT_FULL = 'F', /* the program left too many keystrokes unread: more are dropped until F_INPUT_ROOM */
  F_INPUT_ROOM = 'N', /* it read enough of them: keystrokes are taken again */
  /* client → shim */
  F_GATE = 'G',    /* the command to run: NUL-separated directives (gate.c) */
  F_INPUT = 'I',   /* keystrokes */
  F_WINSIZE = 'W', /* "COLS ROWS" */
  F_PAUSE = 'P',   /* stop reading output (the terminal's program blocks) */
  F_RESUME = 'C',
  F_REPLAY_ASK = 'B',
  F_KILL = 'K',    /* "SIGNAL" to the container's first process */
  F_RELEASE = 'L', /* the client has what it needs: the shim may leave once the container exited */
};

#define FRAME_MAX (1u << 20)

int frame_write(int fd, char type, const void *data, size_t len);
int frame_printf(int fd, char type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Incremental frame reader for a non-blocking descriptor. */
struct frame_reader {
  unsigned char header[5];
  size_t have_header;
  char *payload;
  size_t have_payload, length;
};
/* 1: a frame is complete in type, payload and len (the payload is owned by the reader until the next call); 0: need more; -1: closed or error. */
int frame_read(int fd, struct frame_reader *r, char *type, char **payload, size_t *len);
void frame_reader_reset(struct frame_reader *r);

/* ---- the two phases ---------------------------------------------------- */

/* Runs the host operations; at "clone" it calls make_child, which returns the new process's pid; "release" calls release_child. */
int run_host_phase(const struct plan *plan, int report_fd, pid_t (*make_child)(void), int (*release_child)(void));
/* The container's first process: runs the container phase, reports, waits at the gate, execs. Never returns. */
void container_main(const struct plan *plan, int sync_fd, int pass_fd, const void *seccomp, size_t seccomp_len) __attribute__((noreturn));

/* ---- entering a running container (enter.c) -------------------------- */

/* `pg-shim enter ARGS...`: runs a program in a running container's namespaces; returns its exit status. */
int enter_main(int argc, char **argv);

/* ---- small helpers (util.c) -------------------------------------------- */

uint64_t now_us(void);
extern int log_fd;
/* The last message logged: what a failure reports to the client. */
extern char last_message[512];
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int write_file(const char *path, const char *text);
int write_all(int fd, const void *data, size_t len);
char *read_whole(const char *path, size_t max, size_t *len);
int parse_u64(const char *s, unsigned long long *out);
int parse_int(const char *s, int *out);

#endif
