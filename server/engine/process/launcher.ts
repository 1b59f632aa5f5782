// The launcher: turns a root file system and a command into a running,
// isolated container process, with the host's own util-linux tools.
//
// The shape, in the order it happens (each part is a Step a student is shown):
//  1. a placeholder process creates the user namespace, and the host writes its
//     uid/gid map (container 0..65535 = host 100000..165535). We write the map
//     ourselves because `unshare --map-users` goes through newuidmap, which
//     needs /etc/subuid entries we do not want to require;
//  2. the container's process starts as a small host shell that joins the
//     container's cgroups (so every later process is counted and limited), then
//     execs: nsenter into the user namespace (becoming its root) → unshare of
//     the other namespaces, forking PID 1 → setpriv (no_new_privs, Docker's
//     capability bounding set, the container user) → a host shell that waits
//     at a gate (a FIFO) without running anything of the image;
//  3. the host enters the container's namespaces with nsenter and builds its
//     file system view there, ending with pivot_root (see mounts.ts). pivot_root
//     moves the waiting shell into the new root along with it;
//  4. launch() returns: the caller attaches the network (it needs the pid);
//  5. start() writes one line into the gate: the shell sets the container's
//     environment, changes to its working directory and execs the command,
//     which is then PID 1, in the image, with nothing of the host left.
// Why the mount work is done from outside: the waiting shell has already lost
// CAP_SYS_ADMIN (the bounding set is dropped), and a glibc tool from the host
// could not run inside a musl image after pivot_root anyway.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { IPty } from "node-pty";
import { boundingSetArg } from "./capabilities.ts";
import { commandLine, shellQuote, type Host, type Step } from "../host.ts";
import { filesystemSteps, scriptOf } from "./mounts.ts";
import { idMap, nsenterArgs, SETUP_NAMESPACES, TOOL_ENV, TOOLS, unshareArgs } from "./namespaces.ts";

const openFile = promisify(fs.open);

export interface LaunchSpec {
  id: string;
  /** The merged overlay directory (Rootfs.merged): the container's "/". */
  rootfs: string;
  hostname: string;
  argv: string[];
  /** "NAME=value" entries: exactly the container command's environment (PATH defaults to Docker's if absent). */
  env: string[];
  /** Absolute path inside the container; must exist in the image. */
  cwd: string;
  /** Inside the container. */
  user: { uid: number; gid: number };
  uidBase: number;
  uidCount: number;
  /** The process enters these before any container code runs. */
  cgroupProcsFiles: string[];
  /** Bound read-only into the container; target is a path inside it under /sys/fs/cgroup. */
  cgroupMounts: { source: string; target: string }[];
  /** Per-container files (/etc/hosts, /etc/hostname, /etc/resolv.conf): path is inside the container, one directory below "/". */
  files: { path: string; content: string }[];
  /** node-pty when set; pipes when null. */
  tty: { cols: number; rows: number } | null;
}

export interface Launched {
  /** Host pid of the container's init (PID 1 inside). */
  pid: number;
  pty?: IPty;
  child?: ChildProcess;
  /** Open the gate: the container's command begins. */
  start(): Promise<void>;
  /** exitCode is 128+n when the container was killed by signal n, as in a shell. */
  exited: Promise<{ exitCode: number; signal?: string }>;
  /** Signal the container's PID 1 (SIGKILL by default: PID 1 ignores signals it has no handler for). */
  kill(signal?: NodeJS.Signals): void;
  steps: Step[];
}

/** Docker's PATH for images that set none. */
export const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Closes every descriptor the server may have inherited without close-on-exec
 * (node marks its own, not those its parent left open: bash can close any
 * number, dash only 0-9), joins the cgroups, then execs the rest of its
 * arguments. Arguments: COUNT PROCS_FILE... COMMAND...
 */
const JOIN_CGROUPS = `for fd in /proc/$$/fd/*; do fd=\${fd##*/}; if [ "$fd" -gt 2 ]; then exec {fd}>&-; fi; done
n=$1; shift
while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done
exec "$@"`;

/**
 * The gate. Runs as the container user with its final capabilities, in the
 * container's namespaces. Arguments: GATE WORKDIR COUNT NAME=VALUE... COMMAND...
 * The read's redirection closes the FIFO again, so no descriptor of it survives
 * into the command; if the host goes away, read fails and nothing runs.
 */
const GATE = `gate=$1 workdir=$2 n=$3; shift 3
read -r _ < "$gate" || exit 125
cd "$workdir" || { echo "playground: working directory $workdir does not exist in the image" >&2; exit 125; }
unset PATH PWD OLDPWD SHLVL TERM
while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done
exec "$@"`;

export async function launch(host: Host, spec: LaunchSpec): Promise<Launched> {
  validate(spec);
  await assertReachable(spec.rootfs);
  const steps: Step[] = [];
  const runDir = path.join(path.dirname(spec.rootfs), "run");
  const gatePath = path.join(runDir, "gate");
  const files = spec.files.map((f, i) => ({ ...f, source: path.join(runDir, `${i}-${path.posix.basename(f.path)}`) }));
  const env = spec.env.some((e) => e.startsWith("PATH=")) ? spec.env : [DEFAULT_PATH, ...spec.env];

  const cleanups: (() => void)[] = [];
  try {
    // Files the container will see, and its gate: owned by container ids so
    // the container's root (and user) can use them.
    const root = `${spec.uidBase}:${spec.uidBase}`;
    const user = `${spec.uidBase + spec.user.uid}:${spec.uidBase + spec.user.gid}`;
    const prepare: Step[] = [
      { title: "Make the container's run directory", command: `mkdir -p -m 0755 ${shellQuote(runDir)}\nrm -f ${shellQuote(gatePath)}` },
      ...files.map((f) => ({
        title: `Write the container's ${f.path}`,
        command: `printf '%s' ${shellQuote(f.content)} > ${shellQuote(f.source)}\nchown ${root} ${shellQuote(f.source)}`,
      })),
      {
        title: "Make the gate: a FIFO the container's process waits on until its file system is ready",
        command: `mkfifo -m 0600 ${shellQuote(gatePath)}\nchown ${user} ${shellQuote(gatePath)}`,
      },
    ];
    steps.push(...prepare);
    const prepared = host.exec("Prepare the container's run directory", [TOOLS.sh, "-ec", scriptOf(prepare)]);
    prepared.catch(() => undefined); // awaited below; this only keeps an early failure elsewhere from leaving it unhandled

    // 1. The user namespace, held by a placeholder while its map is written.
    steps.push({
      title: "Create the user namespace (a placeholder process holds it while its id map is written)",
      command: `unshare --user -- sh -c 'echo ready; read _' &`,
    });
    const holder = spawn(TOOLS.unshare, ["--user", "--", TOOLS.sh, "-c", "echo ready; read _"], {
      stdio: ["pipe", "pipe", "ignore"],
      env: TOOL_ENV,
      cwd: "/",
    });
    cleanups.push(() => holder.kill("SIGKILL"));
    await firstOutput(holder);
    await prepared;
    const map = idMap(spec.uidBase, spec.uidCount);
    await host.writeFile("Map the container's user ids onto unprivileged host ids", `/proc/${holder.pid}/uid_map`, map);
    steps.push({ title: "Map the container's user ids onto unprivileged host ids", command: `echo '${map.trim()}' > /proc/${holder.pid}/uid_map` });
    await host.writeFile("Map the container's group ids the same way", `/proc/${holder.pid}/gid_map`, map);
    steps.push({ title: "Map the container's group ids the same way", command: `echo '${map.trim()}' > /proc/${holder.pid}/gid_map` });

    // 2. The container's process, from cgroups to the gate.
    const chain = launchChain(spec, `/proc/${holder.pid}/ns/user`, gatePath, env);
    steps.push(...chain.steps);
    const proc = await startProcess(chain.argv, spec.tty);
    cleanups.push(() => proc.killLauncher());

    // The gate shell opening its end of the FIFO is the sign that everything
    // before it worked: namespaces made, capabilities dropped, user switched.
    const gate = await openGate(gatePath, proc.exited, proc.output);
    proc.stopCapture();
    cleanups.push(() => fs.closeSync(gate));
    holder.kill("SIGKILL");
    steps.push({ title: "Stop the placeholder: the user namespace lives on with the container", command: "kill %1" });
    const pid = childOf(proc.pid);

    // 3. The file system view, built from outside.
    const fsSteps = filesystemSteps({
      root: spec.rootfs,
      hostname: spec.hostname,
      cgroupMounts: spec.cgroupMounts,
      files: files.map((f) => ({ source: f.source, target: f.path })),
    });
    const enter = nsenterArgs(pid, SETUP_NAMESPACES);
    steps.push({ title: "Enter the container's namespaces from the host, as the container's root", command: `${commandLine(enter)} sh -e` });
    steps.push(...fsSteps);
    // A clean environment: nothing of the server's (its tokens) reaches this shell.
    const cleanEnv = ["/usr/bin/env", "-i", `PATH=${TOOL_ENV.PATH}`];
    await host.exec("Build the container's file system view", [...enter, ...cleanEnv, TOOLS.sh, "-ec", scriptOf(fsSteps)]);

    // unshare re-raises the signal that killed PID 1 on itself, except SIGKILL,
    // which it cannot reset to default: it then prints "sigprocmask unblock
    // failed" and exits 1. A SIGKILL we sent is reported as what it was; any
    // other (the OOM killer's) shows as exit 1, and the cgroup's OOM count
    // tells it apart.
    let sentKill = false;
    // Once PID 1 is gone its number may be given to another process: never signal it again.
    let gone = false;
    const exited = proc.exited.then((s) => {
      gone = true;
      return sentKill && s.exitCode === 1 ? { exitCode: 137, signal: "SIGKILL" } : s;
    });
    let gateOpen = true;
    const closeGate = () => {
      if (gateOpen) fs.closeSync(gate);
      gateOpen = false;
    };
    return {
      pid,
      pty: proc.pty,
      child: proc.child,
      steps,
      exited,
      async start() {
        if (!gateOpen) throw new Error(`container ${spec.id}: already started or killed`);
        steps.push({ title: "Open the gate: the container's command starts", command: `echo > ${shellQuote(gatePath)}` });
        fs.writeSync(gate, "\n");
        closeGate();
        await host.removeTree("Remove the gate", gatePath);
      },
      kill(signal: NodeJS.Signals = "SIGKILL") {
        closeGate();
        if (gone) return;
        sentKill ||= signal === "SIGKILL";
        try {
          process.kill(pid, signal);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
        }
      },
    };
  } catch (error) {
    for (const cleanup of cleanups.reverse()) {
      try {
        cleanup();
      } catch {
        // best effort: the original error is the one worth reporting
      }
    }
    throw error;
  }
}

/** The command line of the container's process, and the steps it stands for. */
export function launchChain(spec: LaunchSpec, userNs: string, gatePath: string, env: string[]) {
  const join = [TOOLS.bash, "--norc", "--noprofile", "-c", JOIN_CGROUPS, "pg-join", String(spec.cgroupProcsFiles.length), ...spec.cgroupProcsFiles];
  const enterUser = [TOOLS.nsenter, `--user=${userNs}`, "--"];
  const namespaces = unshareArgs();
  const privileges = [
    TOOLS.setpriv,
    "--nnp",
    `--reuid=${spec.user.uid}`,
    `--regid=${spec.user.gid}`,
    "--clear-groups",
    `--bounding-set=${boundingSetArg()}`,
    "--inh-caps=-all",
    "--",
  ];
  const gate = [TOOLS.sh, "-c", GATE, "pg-gate", gatePath, spec.cwd, String(env.length), ...env, ...spec.argv];
  const steps: Step[] = [
    {
      title: "Start the container's process in its cgroups, before it runs anything else (and close stray descriptors)",
      command: spec.cgroupProcsFiles.map((f) => `echo $$ > ${shellQuote(f)}`).join("\n") || ": no cgroups",
    },
    { title: "Enter the user namespace as its root (uid 0 inside)", command: `exec ${commandLine(enterUser)} \\` },
    { title: "Create the UTS, PID, network, mount, IPC and cgroup namespaces; fork PID 1", command: `  ${commandLine(namespaces)} \\` },
    {
      title: "Set no_new_privs, keep only Docker's default capabilities, become the container user",
      command: `  ${commandLine(privileges)} \\`,
    },
    { title: "Wait at the gate (no code of the image runs yet)", command: `  ${commandLine(gate)}` },
  ];
  return { argv: [...join, ...enterUser, ...namespaces, ...privileges, ...gate], steps };
}

interface StartedProcess {
  /** The launcher's pid: after its execs, the unshare that waits for PID 1. */
  pid: number;
  pty?: IPty;
  child?: ChildProcess;
  exited: Promise<{ exitCode: number; signal?: string }>;
  /** What the process printed so far (for errors before the container runs). */
  output(): Promise<string>;
  /** The container reached its gate: from here on its output is the caller's alone. */
  stopCapture(): void;
  killLauncher(): void;
}

async function startProcess(argv: string[], tty: LaunchSpec["tty"]): Promise<StartedProcess> {
  // The host tools get a clean environment (the image's would reach them as
  // host root: LD_PRELOAD and friends), and "/" as their directory, which
  // pivot_root later turns into the container's "/".
  if (tty) {
    const { spawn: spawnPty } = await import("node-pty");
    const pty = spawnPty(argv[0], argv.slice(1), { name: "xterm", cols: tty.cols, rows: tty.rows, cwd: "/", env: TOOL_ENV });
    // Kept only until the gate opens, to explain a failed start; bounded, since
    // a broken launcher could print without end.
    let seen = "";
    const listener = pty.onData((d) => (seen = (seen + d).slice(-8192)));
    const exited = new Promise<{ exitCode: number; signal?: string }>((resolve) =>
      pty.onExit(({ exitCode, signal }) => resolve(exitStatus(exitCode, signal || undefined))),
    );
    return {
      pid: pty.pid,
      pty,
      exited,
      output: async () => (listener.dispose(), seen),
      stopCapture: () => listener.dispose(),
      killLauncher: () => kill(pty.pid),
    };
  }
  const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], env: TOOL_ENV, cwd: "/" });
  const exited = new Promise<{ exitCode: number; signal?: string }>((resolve) =>
    child.on("exit", (code, signal) => resolve(exitStatus(code ?? 0, signal ? os.constants.signals[signal] : undefined))),
  );
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  return {
    pid: child.pid!,
    child,
    exited,
    output: async () => {
      let text = "";
      for await (const chunk of child.stderr!) text += chunk;
      return text;
    },
    stopCapture: () => undefined,
    killLauncher: () => kill(child.pid!),
  };
}

function exitStatus(code: number, signal: number | undefined): { exitCode: number; signal?: string } {
  if (!signal) return { exitCode: code };
  const name = Object.entries(os.constants.signals).find(([, n]) => n === signal)?.[0];
  return { exitCode: 128 + signal, signal: name };
}

/** SIGKILL, not SIGTERM: unshare ignores SIGTERM while it waits for PID 1; its death kills PID 1 (--kill-child). */
function kill(pid: number) {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Resolves once the placeholder runs inside its new user namespace (it says so). */
function firstOutput(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`creating the user namespace failed (unshare --user exited ${code})`)));
    child.once("error", reject);
  });
}

/**
 * Opens the writing end of the gate. open(2) of a FIFO blocks until the other
 * end is opened too: it returns once the gate shell waits on it. If the process
 * dies first, the open is released by opening the reading end ourselves.
 */
async function openGate(gatePath: string, exited: StartedProcess["exited"], output: StartedProcess["output"]): Promise<number> {
  const opening = openFile(gatePath, "w");
  const first = await Promise.race([opening.then((fd) => ({ fd })), exited.then((status) => ({ status }))]);
  if ("fd" in first) return first.fd;
  const release = fs.openSync(gatePath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  await opening.then((fd) => fs.closeSync(fd)).catch(() => undefined);
  fs.closeSync(release);
  const text = (await output()).trim();
  throw new Error(`the container's process exited (status ${first.status.exitCode}) before reaching its gate${text ? `: ${text}` : ""}`);
}

/** The one child of a process (PID 1 of the container is the only child of its unshare). */
function childOf(ppid: number): number {
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === ppid) return Number(entry);
  }
  throw new Error(`the container's PID 1 (child of ${ppid}) was not found`);
}

/**
 * Container root is an unprivileged host uid: it can only reach the root file
 * system (and the files bound into it) through directories others may search.
 */
async function assertReachable(rootfs: string): Promise<void> {
  for (let dir = path.dirname(rootfs); ; dir = path.dirname(dir)) {
    const mode = (await fsp.stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `${dir} (mode ${(mode & 0o777).toString(8)}) cannot be searched by other users, so the container's root (an unprivileged host uid) cannot reach ${rootfs}: run chmod o+x ${dir}`,
      );
    }
    if (dir === "/") return;
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*=/;

function validate(spec: LaunchSpec) {
  const fail = (what: string) => {
    throw new Error(`container ${spec.id}: ${what}`);
  };
  if (spec.argv.length === 0) fail("no command to run");
  if (!path.isAbsolute(spec.cwd)) fail(`working directory ${spec.cwd} must be an absolute path`);
  if (!path.isAbsolute(spec.rootfs)) fail(`root file system ${spec.rootfs} must be an absolute path`);
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(spec.hostname)) fail(`invalid hostname "${spec.hostname}"`);
  for (const e of spec.env) if (!ENV_NAME.test(e)) fail(`environment entry "${e.split("=")[0]}" is not NAME=value with a name of letters, digits and _`);
  for (const id of [spec.user.uid, spec.user.gid]) {
    if (!Number.isInteger(id) || id < 0 || id >= spec.uidCount) fail(`user id ${id} is outside the container's ${spec.uidCount} mapped ids`);
  }
  for (const f of spec.cgroupProcsFiles) if (!path.isAbsolute(f)) fail(`cgroup file ${f} must be an absolute path`);
}
