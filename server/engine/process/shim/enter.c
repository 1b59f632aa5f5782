/*
 * pg-shim enter: runs a program inside a running container, from the host,
 * such that nothing the container runs can fake what it sees or take it over.
 * Lesson checks, file uploads and downloads are made of it.
 *
 *   pg-shim enter --pid PID --container ID --program FILE --uid UID --gid GID
 *                 [--cgroup PROCS_FILE]... [--seccomp FILE] [--cwd root|shell]
 *                 [--rlimit NAME SOFT HARD]... [--env NAME=VALUE]... [--ptrace]
 *                 -- ARGV...
 *
 * Everything it will use is opened first, as host root, while every path
 * still means the host's: the container's first process (/proc/PID, checked
 * to be in the container's cgroup, so a recycled pid is refused), its
 * namespaces, its cgroups' files, the directory to start in, the program,
 * the system-call filter. Then it joins the container's cgroup, IPC, UTS,
 * network, PID and mount namespaces. Joining the mount namespace sets our
 * root to the container's root: from then on no path, and no symbolic link a
 * student planted, can lead outside the container. The PID namespace applies
 * to children, so it forks; the child moves itself into the container's
 * cgroups (what it does counts against the container's limits; the fork
 * itself does not, so a container at its process limit can still be
 * checked: moving into a cgroup is never refused by pids.max), takes the
 * host ids that container root maps to, drops
 * every capability (it never joins the container's user namespace, so it is
 * an unprivileged host user there), sets no_new_privs, resource limits and
 * the container's system-call filter, and execs the program through the
 * descriptor opened at the start.
 *
 * The program is our own static busybox, root-owned and mode 0711: the uid
 * it runs as may execute it but not read it, so the kernel makes the process
 * non-dumpable at exec, and its memory belongs to the host's user namespace.
 * Container root can neither ptrace it nor read its memory, descriptors or
 * environment through /proc. Its applets come from itself, not from the
 * container's PATH (Debian's busybox-static prefers its own applets and runs
 * them through /proc/self/exe, which the container cannot remount).
 *
 * With --ptrace (lesson checks) it keeps one capability, CAP_SYS_PTRACE, in
 * the host's user namespace: what reading another process's namespaces,
 * root or environment under /proc takes when that process belongs to the
 * container's user namespace and ours does not. It sees only the container's
 * processes (its PID namespace and /proc are the container's), and none of
 * them can ptrace it back (that would take the same capability on the host).
 *
 * What container root *can* do is signal it: the kernel lets a process signal
 * another of the same uid. A lesson check must read a death by signal as a
 * failure (see server/engine/process/enter.ts).
 *
 * stdin, stdout and stderr are the caller's. On descriptor 3, when open, the
 * caller gets frames: F_STARTED once the program runs, F_ERROR if entering
 * failed (nothing ran), F_EXITED with its status. The exit status is the
 * program's (128 + n for signal n), or 125 when entering failed. SIGTERM,
 * SIGINT or SIGHUP end the program's whole process group at once, and so
 * does the program's own end: nothing it started outlives it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "shim.h"

#define MAX_LIST 64

/* Namespaces in the order they are joined: the mount namespace last, as it changes what paths mean. */
static const struct { const char *name; int type; } NAMESPACES[] = {
  {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
  {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
};
#define NNS (sizeof NAMESPACES / sizeof NAMESPACES[0])

static const struct { const char *name; int resource; } RLIMITS[] = {
  {"core", RLIMIT_CORE}, {"cpu", RLIMIT_CPU}, {"fsize", RLIMIT_FSIZE}, {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},
};

struct request {
  int pid;
  const char *container_id, *program, *seccomp_file, *cwd;
  int uid, gid;
  const char *cgroups[MAX_LIST];
  int ncgroups;
  struct { int resource; struct rlimit limit; } rlimits[MAX_LIST];
  int nrlimits;
  char *env[MAX_LIST + 1];
  int nenv;
  char **argv;
  int ptrace; /* keep CAP_SYS_PTRACE: read the container's processes under /proc */
};

/* What was opened before joining. */
struct opened {
  int proc, ns[NNS], cwd, program;
  int cgroups[MAX_LIST]; /* the container's cgroup.procs files, for the child to write itself into */
  char *seccomp;
  size_t seccomp_len;
};

static int client = -1;
static volatile sig_atomic_t stop_signal;

/* Entering failed before anything ran: say why (to the caller's link and stderr) and leave. */
static void refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void refuse(const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (client >= 0) frame_write(client, F_ERROR, text, strlen(text));
  dprintf(2, "pg-shim enter: %s\n", text);
  _exit(125);
}

static int parse_id(const char *s) {
  int v;
  if (parse_int(s, &v) < 0 || v < 0) refuse("bad id \"%s\"", s);
  return v;
}

static void parse_request(int argc, char **argv, struct request *r) {
  memset(r, 0, sizeof *r);
  r->pid = r->uid = r->gid = -1;
  r->cwd = "root";
  int i = 0;
  for (; i < argc; i++) {
    const char *a = argv[i];
    int left = argc - i - 1;
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "--pid") == 0 && left >= 1) r->pid = parse_id(argv[++i]);
    else if (strcmp(a, "--container") == 0 && left >= 1) r->container_id = argv[++i];
    else if (strcmp(a, "--program") == 0 && left >= 1) r->program = argv[++i];
    else if (strcmp(a, "--uid") == 0 && left >= 1) r->uid = parse_id(argv[++i]);
    else if (strcmp(a, "--gid") == 0 && left >= 1) r->gid = parse_id(argv[++i]);
    else if (strcmp(a, "--seccomp") == 0 && left >= 1) r->seccomp_file = argv[++i];
    else if (strcmp(a, "--cwd") == 0 && left >= 1) r->cwd = argv[++i];
    else if (strcmp(a, "--ptrace") == 0) r->ptrace = 1;
    else if (strcmp(a, "--cgroup") == 0 && left >= 1 && r->ncgroups < MAX_LIST) r->cgroups[r->ncgroups++] = argv[++i];
    else if (strcmp(a, "--env") == 0 && left >= 1 && r->nenv < MAX_LIST) r->env[r->nenv++] = argv[++i];
    else if (strcmp(a, "--rlimit") == 0 && left >= 3 && r->nrlimits < MAX_LIST) {
      const char *name = argv[++i];
      unsigned long long soft, hard;
      int resource = -1;
      for (size_t k = 0; k < sizeof RLIMITS / sizeof RLIMITS[0]; k++)
        if (strcmp(RLIMITS[k].name, name) == 0) resource = RLIMITS[k].resource;
      if (resource < 0 || parse_u64(argv[++i], &soft) < 0 || parse_u64(argv[++i], &hard) < 0 || soft > hard) refuse("bad rlimit %s", name);
      r->rlimits[r->nrlimits].resource = resource;
      r->rlimits[r->nrlimits].limit = (struct rlimit){soft, hard};
      r->nrlimits++;
    } else refuse("unexpected argument \"%s\"", a);
  }
  r->argv = argv + i;
  if (r->pid <= 0 || !r->container_id || !r->program || r->uid < 0 || r->gid < 0 || !r->argv[0])
    refuse("usage: pg-shim enter --pid PID --container ID --program FILE --uid UID --gid GID [options] -- ARGV...");
  /* Never host root: the ids are the container's, which are never 0 on the host. */
  if (r->uid == 0 || r->gid == 0) refuse("refusing to run as host root");
  if (strcmp(r->cwd, "root") != 0 && strcmp(r->cwd, "shell") != 0) refuse("--cwd is root or shell, not \"%s\"", r->cwd);
}

/* True when /proc/PID (open as `proc`) is in the container's cgroup: a line of its cgroup file ends in "/ID" (ids are random). */
static int in_container_cgroup(int proc, const char *id) {
  int fd = openat(proc, "cgroup", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[8192];
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  size_t idlen = strlen(id);
  for (char *line = text, *end; *line; line = end + 1) {
    end = strchr(line, '\n');
    if (!end) end = line + strlen(line);
    size_t len = (size_t)(end - line);
    if (len > idlen && end[-(long)idlen - 1] == '/' && strncmp(end - idlen, id, idlen) == 0) return 1;
    if (!*end) break;
  }
  return 0;
}

/*
 * The directory a student's terminal is in: that of the terminal's foreground
 * process (the shell at its prompt, or the program it runs) when that process
 * is one of the container's; else that of the container's first process.
 */
static int open_shell_cwd(int proc, int pid_ns) {
  char stat_text[1024];
  int fd = openat(proc, "stat", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, stat_text, sizeof stat_text - 1) : -1;
  if (fd >= 0) close(fd);
  if (n > 0) {
    stat_text[n] = '\0';
    /* "pid (comm) state ppid pgrp session tty_nr tpgid ...": comm may hold anything, the fields follow its last ')'. */
    char *after = strrchr(stat_text, ')');
    int tpgid = -1;
    if (after && sscanf(after + 1, " %*c %*d %*d %*d %*d %d", &tpgid) == 1 && tpgid > 0) {
      char path[32];
      snprintf(path, sizeof path, "/proc/%d", tpgid);
      int fg = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fg >= 0) {
        struct stat ours, theirs;
        int ns = openat(fg, "ns/pid", O_RDONLY | O_CLOEXEC);
        int same = ns >= 0 && fstat(ns, &theirs) == 0 && fstat(pid_ns, &ours) == 0 && ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev;
        if (ns >= 0) close(ns);
        int cwd = same ? openat(fg, "cwd", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        close(fg);
        if (cwd >= 0) return cwd;
      }
    }
  }
  return openat(proc, "cwd", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void open_everything(const struct request *r, struct opened *o) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d", r->pid);
  /* Held open: should the process go, everything below fails rather than reach a newcomer with its pid. */
  if ((o->proc = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) refuse("the container's process %d is gone: %s", r->pid, strerror(errno));
  if (!in_container_cgroup(o->proc, r->container_id)) refuse("process %d is not container %s's", r->pid, r->container_id);
  for (size_t i = 0; i < NNS; i++) {
    snprintf(path, sizeof path, "ns/%s", NAMESPACES[i].name);
    if ((o->ns[i] = openat(o->proc, path, O_RDONLY | O_CLOEXEC)) < 0) refuse("open the container's %s namespace: %s", NAMESPACES[i].name, strerror(errno));
  }
  for (int i = 0; i < r->ncgroups; i++)
    if ((o->cgroups[i] = open(r->cgroups[i], O_WRONLY | O_CLOEXEC)) < 0) refuse("open the container's cgroup %s: %s", r->cgroups[i], strerror(errno));
  o->cwd = -1;
  if (strcmp(r->cwd, "shell") == 0) {
    if ((o->cwd = open_shell_cwd(o->proc, o->ns[4])) < 0) refuse("open the shell's working directory: %s", strerror(errno));
  }

  /* The program: ours, and not readable by the ids it runs as (that is what makes the process non-dumpable). */
  if ((o->program = open(r->program, O_RDONLY | O_CLOEXEC)) < 0) refuse("open %s: %s", r->program, strerror(errno));
  struct stat st;
  if (fstat(o->program, &st) < 0 || !S_ISREG(st.st_mode)) refuse("%s is not a regular file", r->program);
  if (st.st_uid != 0 || (st.st_mode & 022)) refuse("%s must be owned by root and writable by root only", r->program);
  if (st.st_mode & 044) refuse("%s must not be readable by other users (mode 0711): it would make the process dumpable", r->program);

  o->seccomp = NULL;
  o->seccomp_len = 0;
  if (r->seccomp_file && !(o->seccomp = read_whole(r->seccomp_file, 1 << 20, &o->seccomp_len)))
    refuse("read the system-call filter %s: %s", r->seccomp_file, strerror(errno));
  if (o->seccomp_len % sizeof(struct sock_filter) != 0) refuse("the system-call filter %s is not a BPF program", r->seccomp_file);
}

/* The namespaces, the mount namespace last (the cgroups are the child's to join). */
static void join_container(const struct opened *o) {
  for (size_t i = 0; i < NNS; i++)
    if (setns(o->ns[i], NAMESPACES[i].type) < 0) refuse("join the container's %s namespace: %s", NAMESPACES[i].name, strerror(errno));
}

/* Into the container's cgroups ("0": the writer itself). */
static int join_cgroups(const struct request *r, const struct opened *o) {
  for (int i = 0; i < r->ncgroups; i++)
    if (write(o->cgroups[i], "0", 1) != 1) return -1;
  return 0;
}

/* CAP_SYS_PTRACE alone, through the exec (ambient): the uid change kept the permitted set (PR_SET_KEEPCAPS), this narrows it. */
static int keep_ptrace(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{0}, {0}};
  data[0].effective = data[0].permitted = data[0].inheritable = 1u << CAP_SYS_PTRACE;
  if (syscall(SYS_capset, &header, data) < 0) return -1;
  return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_PTRACE, 0, 0);
}

/* The child: in the container's PID namespace; becomes the container's root user without its powers, and execs. */
static void run_program(const struct request *r, const struct opened *o, int report) __attribute__((noreturn));
static void run_program(const struct request *r, const struct opened *o, int report) {
  char message[512];
  const char *failed = NULL;
  if (join_cgroups(r, o) < 0) failed = "join the container's cgroup";
  /* A group of its own: ending the group ends everything it started. */
  else if (setpgid(0, 0) < 0) failed = "setpgid";
  else if (o->cwd >= 0 ? fchdir(o->cwd) < 0 : chdir("/") < 0) failed = "enter the working directory";
  else if (setgroups(0, NULL) < 0) failed = "setgroups";
  else if (setresgid(r->gid, r->gid, r->gid) < 0) failed = "setresgid";
  else if (r->ptrace && prctl(PR_SET_KEEPCAPS, 1) < 0) failed = "keep capabilities";
  /* Every uid becomes non-zero: the kernel clears every capability (all but the permitted set, with --ptrace). */
  else if (setresuid(r->uid, r->uid, r->uid) < 0) failed = "setresuid";
  else if (r->ptrace && keep_ptrace() < 0) failed = "keep CAP_SYS_PTRACE";
  /* Set once the credentials are final (changing them clears it). */
  else if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) failed = "set the parent-death signal";
  else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) failed = "no_new_privs";
  for (int i = 0; !failed && i < r->nrlimits; i++)
    if (setrlimit(r->rlimits[i].resource, &r->rlimits[i].limit) < 0) failed = "setrlimit";
  /* Every descriptor but stdin, stdout, stderr closes at exec (the link to the caller too). */
  if (!failed && syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) failed = "close_range";
  if (!failed && o->seccomp_len > 0) {
    struct sock_fprog prog = {.len = (unsigned short)(o->seccomp_len / sizeof(struct sock_filter)), .filter = (struct sock_filter *)o->seccomp};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) failed = "install the system-call filter";
  }
  if (!failed) {
    syscall(SYS_execveat, o->program, "", r->argv, r->env, AT_EMPTY_PATH);
    failed = "exec";
  }
  int n = snprintf(message, sizeof message, "%s: %s", failed, strerror(errno));
  if (write(report, message, (size_t)n) < 0) _exit(125);
  _exit(125);
}

static void on_stop(int sig) {
  stop_signal = sig;
}

int enter_main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (fcntl(3, F_GETFD) >= 0) {
    client = 3;
    fcntl(client, F_SETFD, FD_CLOEXEC);
  }
  struct request r;
  parse_request(argc, argv, &r);
  struct opened o;
  open_everything(&r, &o);
  /* If whoever started us goes, so does the program (below, through its group). */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  struct sigaction sa = {.sa_handler = on_stop};
  sigemptyset(&sa.sa_mask);
  for (int sig = 0; sig < 3; sig++) sigaction((int[]){SIGTERM, SIGINT, SIGHUP}[sig], &sa, NULL);

  uint64_t started = now_us();
  join_container(&o);
  int report[2];
  if (pipe2(report, O_CLOEXEC) < 0) refuse("pipe: %s", strerror(errno));
  pid_t child = fork();
  if (child < 0) refuse("fork into the container: %s", strerror(errno));
  if (child == 0) {
    close(report[0]);
    run_program(&r, &o, report[1]);
  }
  /* Also done here, so the group exists whichever of the two runs first. */
  setpgid(child, child);
  close(report[1]);
  /* Until exec, the child writes why it could not; a clean end of the pipe means the program runs. */
  char message[512];
  ssize_t n;
  while ((n = read(report[0], message, sizeof message - 1)) < 0 && errno == EINTR) {
  }
  close(report[0]);
  if (n > 0) {
    message[n] = '\0';
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    refuse("%s", message);
  }
  if (client >= 0) frame_printf(client, F_STARTED, "%llu", (unsigned long long)(now_us() - started));

  /* Wait for the program (not yet reaping it, so its group's id cannot be reused), then end what is left of its group. */
  siginfo_t info;
  for (;;) {
    if (stop_signal) kill(-child, SIGKILL);
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, child, &info, WEXITED | WNOWAIT) == 0 || errno != EINTR) break;
  }
  kill(-child, SIGKILL);
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (client >= 0) frame_printf(client, F_EXITED, "%d", code);
  return code;
}
