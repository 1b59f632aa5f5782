/*
 * Reading the plan the engine wrote. The file is a list of NUL-terminated
 * words: a directive's name, then its arguments. Words are taken as they
 * are (no quoting), so a path or a value may hold any character but NUL.
 *
 *   step N                       the following operations make up step N of the lesson
 *   host OPERATION ARGS...       an operation of the host phase
 *   container OPERATION ARGS...  an operation of the container phase
 *   SETTING VALUE...             everything else (root, socket, tty, ...)
 *
 * An operation's number of arguments is fixed by its name (OPS below), so a
 * plan that does not fit is refused as a whole before anything is done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "shim.h"

static const struct { const char *name; int nargs; char phase; } OPS[] = {
  /* host phase */
  {"private-mounts", 0, 'h'},
  {"copy-sparse", 2, 'h'},   /* SOURCE DEST */
  {"loop-mount", 5, 'h'},    /* IMAGE TARGET FSTYPE FLAGS DATA */
  {"mkdir", 4, 'h'},         /* PATH MODE UID GID */
  {"mount", 5, 'h'},         /* SOURCE TARGET FSTYPE FLAGS DATA */
  {"symlink", 2, 'h'},       /* TARGET LINKPATH */
  {"chdir", 1, 'h'},         /* relative paths of later host operations start here */
  {"clone", 0, 'h'},         /* the container's first process is made here; the operations below act on it */
  {"uid-map", 1, 'h'},       /* "INSIDE OUTSIDE COUNT" */
  {"gid-map", 1, 'h'},
  {"join-cgroup", 1, 'h'},   /* a cgroup.procs file */
  {"oom-score-adj", 1, 'h'},
  {"rlimit", 3, 'h'},        /* NAME SOFT HARD, e.g. nofile 1024 524288 */
  {"release", 0, 'h'},       /* let the container's process go on with its own operations */
  /* container phase (paths relative to the new root after become-root, until pivot-root) */
  {"bind-root", 0, 'c'},
  {"become-root", 0, 'c'},
  {"unshare-cgroup", 0, 'c'},
  {"hostname", 1, 'c'},
  {"make-private", 0, 'c'},
  {"mount", 5, 'c'},
  {"bind", 3, 'c'},          /* SOURCE TARGET RECURSIVE(0|1) */
  {"remount-ro", 1, 'c'},    /* TARGET */
  {"mkdir", 2, 'c'},         /* PATH MODE */
  {"touch", 1, 'c'},         /* PATH */
  {"symlink", 2, 'c'},       /* TARGET LINKPATH */
  {"pivot-root", 0, 'c'},
  {"open-pty", 0, 'c'},
};

static int op_arity(const char *name, char phase) {
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
    if (OPS[i].phase == phase && strcmp(OPS[i].name, name) == 0) return OPS[i].nargs;
  return -1;
}

/* Words of the file, in order. */
struct words { char **w; int n, at; };

static const char *next(struct words *ws) {
  return ws->at < ws->n ? ws->w[ws->at++] : NULL;
}

static int need(struct words *ws, int count, const char *what) {
  if (ws->n - ws->at < count) {
    logmsg("plan: %s needs %d argument(s)", what, count);
    return -1;
  }
  return 0;
}

static int add_op(struct words *ws, char phase, int step, struct plan *p) {
  const char *name = next(ws);
  if (!name) return logmsg("plan: an operation name is missing"), -1;
  int nargs = op_arity(name, phase);
  if (nargs < 0) return logmsg("plan: unknown %s operation \"%s\"", phase == 'h' ? "host" : "container", name), -1;
  if (need(ws, nargs, name) < 0) return -1;
  struct op **list = phase == 'h' ? &p->host : &p->container;
  int *count = phase == 'h' ? &p->nhost : &p->ncontainer;
  *list = realloc(*list, sizeof(struct op) * (*count + 1));
  if (!*list) return -1;
  struct op *op = &(*list)[(*count)++];
  op->name = name;
  op->args = (const char **)&ws->w[ws->at];
  op->nargs = nargs;
  op->step = step;
  ws->at += nargs;
  return 0;
}

int plan_load(const char *file, struct plan *p) {
  size_t len;
  char *text = read_whole(file, 16 << 20, &len);
  if (!text) return logmsg("plan: cannot read %s: %s", file, strerror(errno)), -1;
  if (len == 0 || text[len - 1] != '\0') return logmsg("plan: %s does not end with a NUL", file), -1;

  struct words ws = {0};
  for (size_t i = 0; i < len; i += strlen(text + i) + 1) {
    ws.w = realloc(ws.w, sizeof(char *) * (ws.n + 1));
    if (!ws.w) return -1;
    ws.w[ws.n++] = text + i;
  }

  memset(p, 0, sizeof *p);
  p->scrollback = 64 * 1024;
  p->keep_caps = ~0ULL;
  int step = 0;
  const char *word;
  while ((word = next(&ws))) {
    const char *a;
    if (strcmp(word, "step") == 0) {
      if (need(&ws, 1, word) < 0 || parse_int(next(&ws), &step) < 0) return -1;
    } else if (strcmp(word, "host") == 0 || strcmp(word, "container") == 0) {
      if (add_op(&ws, word[0], step, p) < 0) return -1;
    } else if (strcmp(word, "root") == 0) {
      if (need(&ws, 1, word) < 0) return -1;
      p->root = next(&ws);
    } else if (strcmp(word, "socket") == 0) {
      if (need(&ws, 1, word) < 0) return -1;
      p->socket_path = next(&ws);
    } else if (strcmp(word, "exit-file") == 0) {
      if (need(&ws, 1, word) < 0) return -1;
      p->exit_file = next(&ws);
    } else if (strcmp(word, "log") == 0) {
      if (need(&ws, 1, word) < 0) return -1;
      p->log_file = next(&ws);
    } else if (strcmp(word, "seccomp") == 0) {
      if (need(&ws, 1, word) < 0) return -1;
      p->seccomp_file = next(&ws);
    } else if (strcmp(word, "tty") == 0) {
      int cols, rows;
      if (need(&ws, 2, word) < 0 || parse_int(next(&ws), &cols) < 0 || parse_int(next(&ws), &rows) < 0) return -1;
      p->tty = 1;
      p->cols = cols > 0 && cols < 10000 ? cols : 80;
      p->rows = rows > 0 && rows < 10000 ? rows : 24;
    } else if (strcmp(word, "keep-caps") == 0) {
      if (need(&ws, 1, word) < 0) return -1;
      a = next(&ws);
      char *end;
      errno = 0;
      p->keep_caps = strtoull(a, &end, 16);
      if (errno || *end) return logmsg("plan: keep-caps wants a hexadecimal mask, got \"%s\"", a), -1;
    } else if (strcmp(word, "daemon") == 0) {
      p->daemon = 1;
    } else if (strcmp(word, "linger") == 0) {
      if (need(&ws, 1, word) < 0 || parse_int(next(&ws), &p->linger_seconds) < 0) return -1;
    } else if (strcmp(word, "scrollback") == 0) {
      unsigned long long v;
      if (need(&ws, 1, word) < 0 || parse_u64(next(&ws), &v) < 0 || v < 1024 || v > (64u << 20)) return -1;
      p->scrollback = v;
    } else {
      return logmsg("plan: unknown directive \"%s\"", word), -1;
    }
  }
  if (!p->root) return logmsg("plan: root is required"), -1;
  int clones = 0;
  for (int i = 0; i < p->nhost; i++) clones += strcmp(p->host[i].name, "clone") == 0;
  if (clones != 1) return logmsg("plan: exactly one clone operation is required"), -1;
  return 0;
}
