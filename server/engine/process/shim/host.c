/*
 * The host phase. First the container's root file system, made by the shim as
 * host root but inside a mount namespace of its own. Nothing mounted here appears
 * in the host's mount table, so no other user of the host can reach into a
 * container's files, and nothing can be left mounted: when the shim and the
 * container are gone, the kernel takes the namespace and its mounts away, and
 * the loop device (marked autoclear) detaches itself.
 * Then the container's first process is cloned, and the host gives it what
 * only the host can: its id maps, its cgroups, its OOM score.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "shim.h"

/* Copy only the parts of SOURCE that hold data: a formatted but empty ext4 image is mostly holes. */
static int copy_sparse(const char *source, const char *dest) {
  int in = open(source, O_RDONLY | O_CLOEXEC);
  if (in < 0) return logmsg("open %s: %s", source, strerror(errno)), -1;
  int out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) return logmsg("create %s: %s", dest, strerror(errno)), close(in), -1;
  struct stat st;
  int rc = -1;
  if (fstat(in, &st) < 0 || ftruncate(out, st.st_size) < 0) goto done;
  for (off_t at = 0;;) {
    off_t data = lseek(in, at, SEEK_DATA);
    if (data < 0) break; /* ENXIO: no data after `at` */
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) goto done;
    for (off_t from = data, to = data; from < hole;) {
      ssize_t n = copy_file_range(in, &from, out, &to, (size_t)(hole - from), 0);
      if (n <= 0) goto done;
    }
    at = hole;
  }
  rc = 0;
done:
  if (rc < 0) logmsg("copy %s to %s: %s", source, dest, strerror(errno));
  close(in);
  close(out);
  return rc;
}

/* Attach IMAGE to a free loop device that detaches itself once unmounted, and mount it. */
static int loop_mount(const char *image, const char *target, const char *fstype, unsigned long flags, const char *data) {
  int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) return logmsg("open /dev/loop-control: %s", strerror(errno)), -1;
  int backing = open(image, O_RDWR | O_CLOEXEC);
  if (backing < 0) return logmsg("open %s: %s", image, strerror(errno)), close(control), -1;
  int rc = -1;
  for (int attempt = 0; attempt < 16 && rc < 0; attempt++) {
    int number = ioctl(control, LOOP_CTL_GET_FREE);
    if (number < 0) { logmsg("LOOP_CTL_GET_FREE: %s", strerror(errno)); break; }
    char device[32];
    snprintf(device, sizeof device, "/dev/loop%d", number);
    int loop = open(device, O_RDWR | O_CLOEXEC);
    if (loop < 0) { logmsg("open %s: %s", device, strerror(errno)); break; }
    struct loop_config config = {.fd = (unsigned)backing, .info = {.lo_flags = LO_FLAGS_AUTOCLEAR}};
    snprintf((char *)config.info.lo_file_name, LO_NAME_SIZE, "%s", image);
    if (ioctl(loop, LOOP_CONFIGURE, &config) < 0) {
      /* Another process took this device between GET_FREE and CONFIGURE: try the next. */
      int saved = errno;
      close(loop);
      if (saved == EBUSY) continue;
      logmsg("LOOP_CONFIGURE %s: %s", device, strerror(saved));
      break;
    }
    if (mount(device, target, fstype, flags, data) < 0) {
      logmsg("mount %s on %s: %s", device, target, strerror(errno));
      ioctl(loop, LOOP_CLR_FD, 0);
    } else {
      rc = 0;
    }
    /* Once mounted, the mount holds the device; our descriptor may go (autoclear acts at the last close). */
    close(loop);
    if (rc < 0) break;
  }
  close(backing);
  close(control);
  return rc;
}

static int op_mkdir(const char *path, const char *mode_text, const char *uid_text, const char *gid_text) {
  unsigned long long mode;
  int uid, gid;
  if (parse_u64(mode_text, &mode) < 0 || parse_int(uid_text, &uid) < 0 || parse_int(gid_text, &gid) < 0) return -1;
  if (mkdir(path, (mode_t)mode) < 0 && errno != EEXIST) return logmsg("mkdir %s: %s", path, strerror(errno)), -1;
  if (chmod(path, (mode_t)mode) < 0) return logmsg("chmod %s: %s", path, strerror(errno)), -1;
  if ((uid >= 0 || gid >= 0) && chown(path, (uid_t)uid, (gid_t)gid) < 0) return logmsg("chown %s: %s", path, strerror(errno)), -1;
  return 0;
}

/* Writes TEXT into /proc/PID/NAME (uid_map, gid_map, oom_score_adj). */
static int write_proc(pid_t pid, const char *name, const char *text) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
  if (write_file(path, text) < 0) return logmsg("write %s: %s", path, strerror(errno)), -1;
  return 0;
}

static const struct { const char *name; int resource; } RLIMITS[] = {
  {"core", RLIMIT_CORE}, {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"memlock", RLIMIT_MEMLOCK},
  {"stack", RLIMIT_STACK}, {"fsize", RLIMIT_FSIZE}, {"msgqueue", RLIMIT_MSGQUEUE}, {"sigpending", RLIMIT_SIGPENDING},
};

/* Sets a resource limit of the container's process (inherited by all it starts), as prlimit(1) does. */
static int set_rlimit(pid_t child, const char *name, const char *soft, const char *hard) {
  int resource = -1;
  for (size_t i = 0; i < sizeof RLIMITS / sizeof RLIMITS[0]; i++)
    if (strcmp(RLIMITS[i].name, name) == 0) resource = RLIMITS[i].resource;
  unsigned long long s, h;
  if (resource < 0 || parse_u64(soft, &s) < 0 || parse_u64(hard, &h) < 0 || s > h) return logmsg("bad rlimit %s %s %s", name, soft, hard), -1;
  struct rlimit limit = {s, h}, current;
  if (prlimit(child, resource, &limit, NULL) == 0) return 0;
  /* Raising a hard limit takes CAP_SYS_RESOURCE, which some hosts deny even to root: keep the host's ceiling then. */
  if (errno != EPERM || prlimit(child, resource, NULL, &current) < 0 || h <= current.rlim_max) return logmsg("prlimit %s: %s", name, strerror(errno)), -1;
  limit.rlim_max = current.rlim_max;
  limit.rlim_cur = s < current.rlim_max ? s : current.rlim_max;
  if (prlimit(child, resource, &limit, NULL) < 0) return logmsg("prlimit %s: %s", name, strerror(errno)), -1;
  return 0;
}

static int run_op(const struct op *op, pid_t (*make_child)(void), int (*release_child)(void), pid_t *child) {
  const char **a = op->args;
  unsigned long long flags = 0;
  char pid_text[16];
  if (strcmp(op->name, "clone") == 0) {
    *child = make_child();
    return *child > 0 ? 0 : -1;
  }
  if (strcmp(op->name, "uid-map") == 0) return write_proc(*child, "uid_map", a[0]);
  if (strcmp(op->name, "gid-map") == 0) return write_proc(*child, "gid_map", a[0]);
  if (strcmp(op->name, "oom-score-adj") == 0) return write_proc(*child, "oom_score_adj", a[0]);
  if (strcmp(op->name, "join-cgroup") == 0) {
    snprintf(pid_text, sizeof pid_text, "%d", (int)*child);
    if (write_file(a[0], pid_text) < 0) return logmsg("write %s: %s", a[0], strerror(errno)), -1;
    return 0;
  }
  if (strcmp(op->name, "rlimit") == 0) return set_rlimit(*child, a[0], a[1], a[2]);
  if (strcmp(op->name, "release") == 0) return release_child();
  if (strcmp(op->name, "private-mounts") == 0) {
    if (unshare(CLONE_NEWNS) < 0) return logmsg("unshare(CLONE_NEWNS): %s", strerror(errno)), -1;
    /* A private copy: what is mounted here does not propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return logmsg("make / private: %s", strerror(errno)), -1;
    return 0;
  }
  if (strcmp(op->name, "copy-sparse") == 0) return copy_sparse(a[0], a[1]);
  if (strcmp(op->name, "symlink") == 0) {
    if (symlink(a[0], a[1]) < 0) return logmsg("symlink %s: %s", a[1], strerror(errno)), -1;
    return 0;
  }
  if (strcmp(op->name, "chdir") == 0) {
    if (chdir(a[0]) < 0) return logmsg("chdir %s: %s", a[0], strerror(errno)), -1;
    return 0;
  }
  if (strcmp(op->name, "mkdir") == 0) return op_mkdir(a[0], a[1], a[2], a[3]);
  if (strcmp(op->name, "loop-mount") == 0 || strcmp(op->name, "mount") == 0) {
    if (parse_u64(a[3], &flags) < 0) return logmsg("%s: bad flags %s", op->name, a[3]), -1;
    if (op->name[0] == 'l') return loop_mount(a[0], a[1], a[2], flags, a[4]);
    if (mount(a[0], a[1], a[2], flags, a[4]) < 0) return logmsg("mount %s on %s: %s", a[2], a[1], strerror(errno)), -1;
    return 0;
  }
  return logmsg("unknown host operation %s", op->name), -1;
}

/* Runs the host phase, reporting each step's time on report_fd as it completes. */
int run_host_phase(const struct plan *plan, int report_fd, pid_t (*make_child)(void), int (*release_child)(void)) {
  uint64_t started = now_us();
  pid_t child = 0;
  for (int i = 0; i < plan->nhost; i++) {
    if (run_op(&plan->host[i], make_child, release_child, &child) < 0) return -1;
    int last_of_step = i + 1 == plan->nhost || plan->host[i + 1].step != plan->host[i].step;
    if (last_of_step && report_fd >= 0) {
      uint64_t now = now_us();
      frame_printf(report_fd, F_STEP, "%d %llu", plan->host[i].step, (unsigned long long)(now - started));
      started = now;
    }
  }
  return 0;
}
