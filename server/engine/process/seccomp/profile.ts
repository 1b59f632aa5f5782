// The system-call filter's policy, as data: which calls a container may make.
//
// Every request a program makes to the kernel (open a file, start a process,
// mount a file system…) is a *system call*, identified by a number. seccomp lets
// a process install a filter that the kernel runs on each of its system calls
// before doing anything else; the filter answers "allow" or "fail with this
// error". The filter is inherited by every child and can never be removed.
//
// Containers run with the policy of Docker's default profile (moby's
// profiles/seccomp/default.json): a list of allowed calls, and EPERM
// ("Operation not permitted") for everything else. Docker's list was written
// for a container with Docker's default capabilities (capabilities.ts): the
// calls it gates on capabilities that set lacks (CAP_SYS_ADMIN, CAP_SYS_TIME,
// CAP_SYS_MODULE, …) are refused here, with the reasons in REFUSED.
//
// Why filter at all, when the container has few capabilities and its own user
// namespace? Because many dangerous calls need *no* capability (any user may
// create a user namespace, use io_uring or the kernel keyring), and each is a
// door into kernel code where a bug means escaping the container. The filter
// keeps those doors shut; it is the second wall behind capabilities.
//
// Only names matter here. syscalls.ts turns them into numbers for each
// architecture; a name an architecture lacks (aarch64 has no `open`, only
// `openat`) is skipped there.

export type ProfileName = "default" | "nested";

/** A group of calls with the same reason, in words for someone learning containers. */
export interface CallGroup {
  label: string;
  why: string;
  calls: readonly string[];
}

/**
 * Allowed calls, grouped by what programs use them for. This is everything an
 * ordinary program (a shell, a compiler, a database, a web server) needs.
 */
export const ALLOWED: readonly CallGroup[] = [
  {
    label: "files",
    why: "Open, read, write and close files; list directories; create, rename and delete names; change modes and owners (the kernel still checks permissions).",
    calls: [
      "read", "write", "open", "openat", "openat2", "creat", "close", "close_range",
      "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
      "lseek", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "readahead", "fadvise64",
      "fallocate", "truncate", "ftruncate", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
      "dup", "dup2", "dup3", "fcntl", "flock", "ioctl", "pipe", "pipe2",
      "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "cachestat",
      "access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
      "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2",
      "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "readlink", "readlinkat",
      "mknod", "mknodat", "chmod", "fchmod", "fchmodat", "fchmodat2",
      "chown", "fchown", "lchown", "fchownat", "umask",
      "utime", "utimes", "utimensat", "futimesat", "name_to_handle_at",
    ],
  },
  {
    label: "extended attributes",
    why: "Name=value labels on files (file capabilities, ACLs, user.* notes).",
    calls: [
      "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
      "listxattr", "llistxattr", "flistxattr", "listxattrat", "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
    ],
  },
  {
    label: "watching and waiting",
    why: "Wait for many things at once (sockets, pipes, timers, signals) and be told when files change.",
    calls: [
      "poll", "ppoll", "select", "pselect6",
      "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
      "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create", "timerfd_settime", "timerfd_gettime",
      "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
      "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    ],
  },
  {
    label: "memory",
    why: "Map memory and files into the address space, protect it, lock it in RAM.",
    calls: [
      "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
      "mlock", "mlock2", "munlock", "mlockall", "munlockall", "remap_file_pages", "membarrier",
      "memfd_create", "memfd_secret", "mseal", "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack",
    ],
  },
  {
    label: "processes and threads",
    why: "Start programs and threads, wait for them, and learn about oneself. (clone, the call behind fork and threads, is in CONDITIONAL.)",
    calls: [
      "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
      "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
      "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "restart_syscall",
      "futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
      "arch_prctl", "modify_ldt", "set_thread_area", "get_thread_area", "prctl",
      "pidfd_open", "pidfd_send_signal", "process_mrelease",
      "uname", "sysinfo", "getcpu", "getrandom", "capget", "capset", "uretprobe",
      // A process may restrict itself further (that is how sandboxes in the container work).
      "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
      // Entering a directory as the new root: the container has CAP_SYS_CHROOT, as in Docker.
      "chroot",
    ],
  },
  {
    label: "debugging",
    why: "Debuggers (gdb, strace) inspect processes of the same user. Docker allows these without CAP_SYS_PTRACE since Linux 4.8, whose seccomp can no longer be dodged with ptrace.",
    calls: ["ptrace", "process_vm_readv", "process_vm_writev"],
  },
  {
    label: "signals",
    why: "Send, catch and wait for signals (Ctrl-C, child exits, timers).",
    calls: [
      "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait",
      "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigreturn", "sigaltstack", "pause", "alarm",
    ],
  },
  {
    label: "users and groups",
    why: "Switch between the container's users (su, package managers dropping privileges); the user namespace keeps them all unprivileged on the host.",
    calls: [
      "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
      "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups",
    ],
  },
  {
    label: "scheduling and limits",
    why: "CPU affinity, priorities and resource limits of its own processes (the kernel refuses raising them without capabilities).",
    calls: [
      "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
      "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
      "sched_rr_get_interval", "sched_getattr", "sched_setattr", "getpriority", "setpriority",
      "ioprio_get", "ioprio_set", "getrlimit", "setrlimit", "prlimit64", "getrusage", "times",
    ],
  },
  {
    label: "time",
    why: "Read the clocks, sleep, and set timers. adjtimex and clock_adjtime are allowed because they mostly *read* the clock's state (ntp_gettime); changing the clock with them needs CAP_SYS_TIME in the host's user namespace, which the kernel checks itself.",
    calls: [
      "time", "gettimeofday", "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
      "getitimer", "setitimer", "timer_create", "timer_delete", "timer_settime", "timer_gettime", "timer_getoverrun",
      "adjtimex", "clock_adjtime",
    ],
  },
  {
    label: "networking",
    why: "Sockets in the container's own network namespace. (socket itself is in CONDITIONAL.)",
    calls: [
      "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
      "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
    ],
  },
  {
    label: "inter-process communication",
    why: "System V shared memory, semaphores and message queues, and POSIX message queues: all in the container's own IPC namespace.",
    calls: [
      "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
      "msgget", "msgsnd", "msgrcv", "msgctl",
      "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    ],
  },
  {
    label: "mount table (reading)",
    why: "List the mounts the container can see, without changing them.",
    calls: ["statmount", "listmount"],
  },
];

/**
 * What the filter compares for a conditional call: one argument's value.
 * Only the low 32 bits are compared: these arguments are C `int`s (or, for
 * clone, flags the kernel keeps the low 32 bits of), so the kernel ignores
 * the upper half, and the filter must too, or garbage there could make a
 * refused value look different.
 */
export type ArgumentTest =
  | { allowUnlessAnyBitOf: number }
  | { allowOnlyValues: readonly number[] }
  | { refuseValues: readonly number[] };

export interface ConditionalCall {
  syscall: string;
  /** Which argument the test looks at (0 = the first). */
  argument: number;
  test: ArgumentTest;
  /** The rule in a few words, for the summary a student reads. */
  inWords: string;
  why: string;
}

/** The namespace flags of clone(2) and unshare(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** Allowed only for some argument values. */
export const CONDITIONAL: readonly ConditionalCall[] = [
  {
    syscall: "clone",
    // The flags are the first argument on x86_64 and aarch64 (not on s390).
    argument: 0,
    test: { allowUnlessAnyBitOf: CLONE_NAMESPACE_FLAGS },
    inWords: "clone without CLONE_NEW* flags",
    why: "fork() and new threads are clone(); making namespaces with it is refused, like unshare.",
  },
  {
    syscall: "personality",
    argument: 0,
    // PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff = "just tell me the current one".
    test: { allowOnlyValues: [0x0, 0x8, 0x20000, 0x20008, 0xffffffff] },
    inWords: "personality only 0x0 0x8 0x20000 0x20008 0xffffffff",
    why: "Those values only change what uname reports (setarch linux32); others switch off address-space randomisation or emulate other systems.",
  },
  {
    syscall: "socket",
    argument: 0,
    // 38 = AF_ALG, 40 = AF_VSOCK.
    test: { refuseValues: [38, 40] },
    inWords: "socket except AF_ALG and AF_VSOCK",
    why: "AF_ALG sockets reach the kernel's crypto code (a history of bugs), AF_VSOCK sockets talk to the hypervisor; no ordinary program needs either.",
  },
];

const ENOSYS = 38;

/** Answered with an error other than EPERM. */
export const ANSWERED_WITH_ERRNO: readonly { syscall: string; errno: number; inWords: string; why: string }[] = [
  {
    syscall: "clone3",
    errno: ENOSYS,
    inWords: "ENOSYS for clone3 (so libc falls back to clone)",
    why: "clone3 passes its flags in memory, where a filter cannot look, so it cannot be allowed only without namespace flags. ENOSYS (\"no such call\") makes glibc and musl fall back to clone, which the filter can check; EPERM would make them fail instead.",
  },
];

/**
 * Refused on purpose, by the reason: Docker's profile leaves them out, or allows
 * them only with capabilities a container does not have. Any call not allowed
 * above is refused anyway; these are the ones worth knowing about, and the
 * filter's tests check each of them.
 */
export const REFUSED: readonly CallGroup[] = [
  {
    label: "namespaces",
    why: "Making new namespaces or joining others': any user may create a user namespace, and inside it gets every capability, which opens kernel code that was written for root only. (clone with CLONE_NEW* flags is refused by CONDITIONAL.)",
    calls: ["unshare", "setns"],
  },
  {
    label: "mounts",
    why: "Changing what is mounted where: the container's file system view is built for it by the host before it starts, and must stay as built.",
    calls: ["mount", "umount2", "pivot_root", "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"],
  },
  {
    label: "host names",
    why: "The container's hostname is set by the host when it is made (CAP_SYS_ADMIN in Docker).",
    calls: ["sethostname", "setdomainname"],
  },
  {
    label: "the running kernel",
    why: "Loading or removing kernel code, booting another kernel, rebooting: power over the whole machine (CAP_SYS_MODULE, CAP_SYS_BOOT).",
    calls: ["init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot"],
  },
  {
    label: "programs inside the kernel",
    why: "eBPF programs and performance counters run code or watch events in the kernel itself (CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON).",
    calls: ["bpf", "perf_event_open", "lookup_dcookie"],
  },
  {
    label: "kernel keyring",
    why: "The kernel's key store is not split by namespace: keys of the host or of other containers could be reached.",
    calls: ["keyctl", "add_key", "request_key"],
  },
  {
    label: "risky kernel interfaces",
    why: "userfaultfd lets a program pause the kernel mid-copy (a favourite tool of exploits); io_uring is a second way into most of the kernel that seccomp cannot see into, and has had many escapes.",
    calls: ["userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register"],
  },
  {
    label: "file handles",
    why: "open_by_handle_at opens a file by its inode number, past the container's root: the 2014 \"shocker\" escape from Docker (CAP_DAC_READ_SEARCH).",
    calls: ["open_by_handle_at"],
  },
  {
    label: "setting the clock",
    why: "The clock is the host's, shared by all (CAP_SYS_TIME). (stime, the oldest of these calls, does not exist on x86_64 or aarch64.)",
    calls: ["settimeofday", "clock_settime"],
  },
  {
    label: "host-wide machine state",
    why: "Swap, process accounting, the kernel log, disk quotas, terminals and I/O ports belong to the whole machine (CAP_SYS_ADMIN, CAP_SYS_PACCT, CAP_SYSLOG, CAP_SYS_TTY_CONFIG, CAP_SYS_RAWIO).",
    calls: ["swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd", "vhangup", "iopl", "ioperm"],
  },
  {
    label: "other processes' insides",
    why: "Comparing, stealing file descriptors from, or advising the memory of other processes (CAP_SYS_PTRACE).",
    calls: ["kcmp", "pidfd_getfd", "process_madvise"],
  },
  {
    label: "memory placement",
    why: "Placing memory on particular NUMA nodes of the machine (CAP_SYS_NICE).",
    calls: ["mbind", "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages"],
  },
  {
    label: "security modules and fanotify",
    why: "Reading or setting security-module attributes and watching whole file systems (CAP_SYS_ADMIN).",
    calls: ["lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "fanotify_init"],
  },
];

/**
 * The `nested` profile, for labs where students build their own container
 * inside ours: everything of `default`, plus making namespaces, mounting, and
 * naming the new UTS namespace. That is safe enough because the kernel keeps
 * these inside the container's own user namespace: a mount or hostname made
 * there is invisible to the host, and the container's root still has no power
 * outside. What stays refused (keyring, bpf, io_uring, modules, clock…) is
 * refused for the same reasons as in `default`.
 *
 * Syscall by syscall, how `nested` differs from `default`.
 */
export const NESTED_OPENS: readonly { syscall: string; underDefault: string; underNested: string }[] = [
  { syscall: "clone", underDefault: "allowed only without CLONE_NEW* flags", underNested: "allowed with any flags" },
  ...["unshare", "setns", "mount", "umount2", "pivot_root", "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "sethostname", "setdomainname"].map(
    (syscall) => ({ syscall, underDefault: "EPERM", underNested: "allowed" }),
  ),
];

/** One profile, resolved: what the compiler needs. */
export interface Profile {
  name: ProfileName;
  /** Allowed whatever the arguments. */
  allowed: readonly string[];
  conditional: readonly ConditionalCall[];
  answeredWithErrno: typeof ANSWERED_WITH_ERRNO;
  /** The notable refusals (every other call not listed is refused too). */
  refused: readonly string[];
}

export function seccompProfile(name: ProfileName): Profile {
  const allowed = ALLOWED.flatMap((g) => g.calls);
  const refused = REFUSED.flatMap((g) => g.calls);
  if (name === "default") return { name, allowed, conditional: CONDITIONAL, answeredWithErrno: ANSWERED_WITH_ERRNO, refused };
  const opened = new Set(NESTED_OPENS.map((o) => o.syscall));
  return {
    name,
    allowed: [...allowed, ...opened],
    conditional: CONDITIONAL.filter((c) => !opened.has(c.syscall)),
    answeredWithErrno: ANSWERED_WITH_ERRNO,
    refused: refused.filter((s) => !opened.has(s)),
  };
}
