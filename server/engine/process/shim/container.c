/*
 * The container's first process, from clone() to exec().
 *
 * It is born in new user, mount, PID, network, UTS and IPC namespaces, as
 * "nobody" with every capability *inside* its user namespace and none on the
 * host. It waits until the host has written its id maps and put it in its
 * cgroups, becomes root of its namespace (host uid 100000 by default), makes a
 * cgroup namespace (now that it sits in its own cgroup, that cgroup is its
 * root), and builds its own file system view with the operations of the plan:
 * /proc, /sys, /dev, the masks, pivot_root into the overlay. Then it waits at
 * the gate, still running nothing of the image.
 *
 * At the gate the engine sends what is particular to this use of the
 * container: hostname, the files /etc/hostname, /etc/hosts, /etc/resolv.conf,
 * the user, the environment and the command. The process applies them, gives
 * up what it does not need (Docker's capability set, no_new_privs, resource
 * limits, the system-call filter, in that order) and execs the command, which
 * becomes PID 1.
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
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include "shim.h"

static int sync_fd = -1;
static int pass_fd = -1; /* where the terminal's master side is handed to the shim */

/* Tell the shim what went wrong and leave: nothing of the image has run. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  frame_write(sync_fd, F_ERROR, text, strlen(text));
  _exit(125);
}

/* Tells the shim a step is done, and how long it took; returns the time it ends. */
static uint64_t report(int step, uint64_t started) {
  uint64_t now = now_us();
  frame_printf(sync_fd, F_STEP, "%d %llu", step, (unsigned long long)(now - started));
  return now;
}

static unsigned long flags_of(const char *text) {
  unsigned long long v;
  if (parse_u64(text, &v) < 0) fail("bad mount flags %s", text);
  return (unsigned long)v;
}

/*
 * A bind mount made read-only keeps the flags it has (nosuid, nodev,
 * noexec): in a user namespace the kernel refuses a remount that would
 * clear a flag the mount got from a more privileged namespace.
 */
static void remount_readonly(const char *target) {
  struct statvfs st;
  if (statvfs(target, &st) < 0) fail("statvfs %s: %s", target, strerror(errno));
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  if (mount(NULL, target, NULL, flags, NULL) < 0) fail("remount %s read-only: %s", target, strerror(errno));
}

/* Opens a terminal of the container's own devpts, and hands its master side to the shim. */
static int open_pty(void) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) fail("open /dev/ptmx: %s", strerror(errno));
  if (unlockpt(master) < 0) fail("unlockpt: %s", strerror(errno));
  char name[64];
  if (ptsname_r(master, name, sizeof name) != 0) fail("ptsname: %s", strerror(errno));
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) fail("open %s: %s", name, strerror(errno));

  char byte = 'M';
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &master, sizeof(int));
  if (sendmsg(pass_fd, &msg, 0) < 0) fail("hand over the terminal: %s", strerror(errno));
  close(master);
  return slave;
}

static void run_op(const struct plan *plan, const struct op *op, int *root_fd, int *slave) {
  const char **a = op->args;
  const char *n = op->name;
  if (strcmp(n, "bind-root") == 0) {
    /*
     * The overlay came from the shim's (more privileged) namespace, so here it
     * is locked to its place and pivot_root refuses it; a bind of it onto
     * itself is a mount of our own. Done, and the new root looked up, while
     * the kernel still checks our file access as host root (only our view of
     * our ids changed): the data directory on the way is closed to every
     * other host user, container root included. From here on the new root is
     * reached through this descriptor.
     */
    if (mount(plan->root, plan->root, NULL, MS_BIND | MS_REC, NULL) < 0) fail("bind %s onto itself: %s", plan->root, strerror(errno));
    if ((*root_fd = open(plan->root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) fail("open %s: %s", plan->root, strerror(errno));
  } else if (strcmp(n, "become-root") == 0) {
    /* The host has mapped our ids: become root of our user namespace, without the host's groups. */
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail("become root of the user namespace: %s", strerror(errno));
    if (setgroups(0, NULL) < 0) fail("setgroups: %s", strerror(errno));
    /* Relative paths of the plan are relative to the new root. */
    if (*root_fd < 0 || fchdir(*root_fd) < 0) fail("enter the new root: %s", strerror(errno));
  } else if (strcmp(n, "unshare-cgroup") == 0) {
    if (unshare(CLONE_NEWCGROUP) < 0) fail("unshare(CLONE_NEWCGROUP): %s", strerror(errno));
  } else if (strcmp(n, "hostname") == 0) {
    if (sethostname(a[0], strlen(a[0])) < 0) fail("sethostname: %s", strerror(errno));
  } else if (strcmp(n, "make-private") == 0) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail("make / private: %s", strerror(errno));
  } else if (strcmp(n, "mount") == 0) {
    if (mount(a[0], a[1], a[2], flags_of(a[3]), a[4]) < 0) fail("mount %s on %s: %s", a[2], a[1], strerror(errno));
  } else if (strcmp(n, "bind") == 0) {
    unsigned long flags = MS_BIND | (strcmp(a[2], "1") == 0 ? MS_REC : 0);
    if (mount(a[0], a[1], NULL, flags, NULL) < 0) fail("bind %s on %s: %s", a[0], a[1], strerror(errno));
  } else if (strcmp(n, "remount-ro") == 0) {
    remount_readonly(a[0]);
  } else if (strcmp(n, "mkdir") == 0) {
    unsigned long long mode;
    if (parse_u64(a[1], &mode) < 0) fail("bad mode %s", a[1]);
    if (mkdir(a[0], (mode_t)mode) < 0 && errno != EEXIST) fail("mkdir %s: %s", a[0], strerror(errno));
  } else if (strcmp(n, "touch") == 0) {
    int fd = open(a[0], O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) fail("create %s: %s", a[0], strerror(errno));
    close(fd);
  } else if (strcmp(n, "symlink") == 0) {
    if (symlink(a[0], a[1]) < 0 && errno != EEXIST) fail("symlink %s: %s", a[1], strerror(errno));
  } else if (strcmp(n, "pivot-root") == 0) {
    if (fchdir(*root_fd) < 0) fail("fchdir: %s", strerror(errno));
    if (syscall(SYS_pivot_root, ".", ".") < 0) fail("pivot_root: %s", strerror(errno));
    /* The old root now sits under the new one, at the same place: detach it, and the host is out of reach. */
    if (umount2(".", MNT_DETACH) < 0) fail("detach the old root: %s", strerror(errno));
    if (chdir("/") < 0) fail("chdir /: %s", strerror(errno));
  } else if (strcmp(n, "open-pty") == 0) {
    *slave = open_pty();
  } else {
    fail("unknown container operation %s", n);
  }
}

/* ---- the gate --------------------------------------------------------- */

struct gate {
  int steps[3]; /* the lesson's step numbers of: identity (hostname, files), privileges, system-call filter */
  const char *hostname, *cwd;
  uid_t uid;
  gid_t gid;
  const char *files[16][2];
  int nfiles;
  char **env, **argv;
  int nenv, nargv;
};

/* The gate's message: NUL-separated directives (steps A B C, hostname H, user UID GID, cwd DIR, file PATH CONTENT, env K=V, argv A). */
static void parse_gate(char *payload, size_t len, struct gate *g) {
  memset(g, 0, sizeof *g);
  char *words[4096];
  int n = 0;
  for (size_t i = 0; i < len && n < 4096; i += strlen(payload + i) + 1) words[n++] = payload + i;
  g->env = calloc(n + 1, sizeof(char *));
  g->argv = calloc(n + 1, sizeof(char *));
  for (int i = 0; i < n; i++) {
    const char *w = words[i];
    int left = n - i - 1, uid, gid;
    if (strcmp(w, "steps") == 0 && left >= 3) {
      for (int k = 0; k < 3; k++)
        if (parse_int(words[++i], &g->steps[k]) < 0) fail("gate: bad step number");
    } else if (strcmp(w, "hostname") == 0 && left >= 1) g->hostname = words[++i];
    else if (strcmp(w, "cwd") == 0 && left >= 1) g->cwd = words[++i];
    else if (strcmp(w, "env") == 0 && left >= 1) g->env[g->nenv++] = words[++i];
    else if (strcmp(w, "argv") == 0 && left >= 1) g->argv[g->nargv++] = words[++i];
    else if (strcmp(w, "user") == 0 && left >= 2) {
      if (parse_int(words[i + 1], &uid) < 0 || parse_int(words[i + 2], &gid) < 0 || uid < 0 || gid < 0) fail("gate: bad user");
      g->uid = (uid_t)uid, g->gid = (gid_t)gid, i += 2;
    } else if (strcmp(w, "file") == 0 && left >= 2 && g->nfiles < 16) {
      g->files[g->nfiles][0] = words[i + 1], g->files[g->nfiles][1] = words[i + 2], g->nfiles++, i += 2;
    } else fail("gate: unexpected \"%s\"", w);
  }
  if (g->nargv == 0) fail("gate: no command");
  if (!g->cwd) g->cwd = "/";
}

/*
 * Writes one of the container's own files (/etc/hosts, …) in its writable
 * layer, where it counts against the layer's size cap. A symbolic link the
 * image put there is replaced, not followed; the process is already inside
 * its own root, so nothing outside the container could be reached anyway.
 */
static void write_container_file(const char *path, const char *content) {
  char dir[256];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    mkdir(dir, 0755);
  }
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) fail("write %s: %s", path, strerror(errno));
  if (write_all(fd, content, strlen(content)) < 0) fail("write %s: %s", path, strerror(errno));
  close(fd);
}

static const char *env_value(struct gate *g, const char *name) {
  size_t len = strlen(name);
  for (int i = 0; i < g->nenv; i++)
    if (strncmp(g->env[i], name, len) == 0 && g->env[i][len] == '=') return g->env[i] + len + 1;
  return NULL;
}

/* The command's path, found as a shell would find it in the container's PATH; NULL when there is none. */
static char *find_command(struct gate *g) {
  const char *cmd = g->argv[0];
  struct stat st;
  if (strchr(cmd, '/')) return stat(cmd, &st) == 0 ? strdup(cmd) : NULL;
  const char *path = env_value(g, "PATH");
  if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char *dirs = strdup(path), *save = NULL;
  for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
    char *candidate;
    if (asprintf(&candidate, "%s/%s", *dir ? dir : ".", cmd) < 0) break;
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111)) return free(dirs), candidate;
    free(candidate);
  }
  free(dirs);
  return NULL;
}

/* Keep only the capabilities of `keep`: out of the bounding set (no exec can get them back), and out of the sets held now. */
static void limit_capabilities(uint64_t keep) {
  int last = 40;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) {
    if (fscanf(f, "%d", &last) != 1) last = 40;
    fclose(f);
  }
  for (int cap = 0; cap <= last; cap++) {
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) fail("drop capability %d: %s", cap, strerror(errno));
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = (uint32_t)keep;
  data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
  if (syscall(SYS_capset, &header, data) < 0) fail("capset: %s", strerror(errno));
}

static void enter_gate(const struct plan *plan, int slave, const void *seccomp, size_t seccomp_len) {
  char type;
  char *payload;
  size_t len;
  struct frame_reader reader = {0};
  int got;
  while ((got = frame_read(sync_fd, &reader, &type, &payload, &len)) == 0) {
  }
  if (got < 0) _exit(125); /* the shim is gone, or told us to stop: nothing runs */
  if (type != F_GATE) fail("expected the gate message");
  struct gate g;
  parse_gate(payload, len, &g);

  uint64_t started = now_us();
  if (g.hostname && sethostname(g.hostname, strlen(g.hostname)) < 0) fail("sethostname: %s", strerror(errno));
  for (int i = 0; i < g.nfiles; i++) write_container_file(g.files[i][0], g.files[i][1]);
  started = report(g.steps[0], started);
  if (chdir(g.cwd) < 0) fail("working directory %s: %s", g.cwd, strerror(errno));
  char *command = find_command(&g);
  if (!command) {
    frame_printf(sync_fd, F_ERROR, "exec: \"%s\": executable file not found in $PATH", g.argv[0]);
    _exit(127);
  }

  if (slave >= 0) {
    /* The terminal becomes the container's controlling terminal, and its stdin, stdout and stderr. */
    if (setsid() < 0) fail("setsid: %s", strerror(errno));
    if (ioctl(slave, TIOCSCTTY, 0) < 0) fail("TIOCSCTTY: %s", strerror(errno));
    struct winsize ws = {.ws_row = plan->rows, .ws_col = plan->cols};
    ioctl(slave, TIOCSWINSZ, &ws);
    for (int fd = 0; fd < 3; fd++)
      if (dup2(slave, fd) < 0) fail("dup2: %s", strerror(errno));
    if (slave > 2) close(slave);
  }
  if (setgroups(0, NULL) < 0) fail("setgroups: %s", strerror(errno));
  /* While still root: trim the capabilities. Becoming another user then empties the rest. */
  limit_capabilities(plan->keep_caps);
  if (setresgid(g.gid, g.gid, g.gid) < 0) fail("setresgid: %s", strerror(errno));
  if (setresuid(g.uid, g.uid, g.uid) < 0) fail("setresuid: %s", strerror(errno));
  /* Once our credentials are final: if the shim dies, so does the container (nobody would supervise it). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("no_new_privs: %s", strerror(errno));
  /* Every descriptor but the terminal closes at exec; the link to the shim tells it that exec happened. */
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) fail("close_range: %s", strerror(errno));
  started = report(g.steps[1], started);
  if (seccomp_len > 0) {
    struct sock_fprog prog = {.len = (unsigned short)(seccomp_len / sizeof(struct sock_filter)), .filter = (struct sock_filter *)seccomp};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) fail("install the system-call filter: %s", strerror(errno));
  }
  /* The last report: the shim times the exec itself (the link to it closes when exec succeeds). */
  report(g.steps[2], started);
  execve(command, g.argv, g.env);
  /* The filter is in place: only write and exit are needed to say why exec failed. */
  int code = errno == ENOENT ? 127 : 126;
  frame_printf(sync_fd, F_ERROR, "exec %s: %s", g.argv[0], strerror(errno));
  _exit(code);
}

void container_main(const struct plan *plan, int fd, int fdpass, const void *seccomp, size_t seccomp_len) {
  sync_fd = fd;
  pass_fd = fdpass;
  /* Until the gate: die with the shim, so a half-built container never outlives it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  char go;
  if (read(sync_fd, &go, 1) != 1) _exit(125);

  int root_fd = -1, slave = -1;
  uint64_t started = now_us();
  for (int i = 0; i < plan->ncontainer; i++) {
    run_op(plan, &plan->container[i], &root_fd, &slave);
    int last_of_step = i + 1 == plan->ncontainer || plan->container[i + 1].step != plan->container[i].step;
    if (last_of_step) started = report(plan->container[i].step, started);
  }
  if (root_fd >= 0) close(root_fd);
  close(pass_fd);
  frame_write(sync_fd, F_READY, "", 0);
  enter_gate(plan, slave, seccomp, seccomp_len);
  _exit(125);
}
