// A pretend cgroup filesystem in a temp dir, for unit tests of the cgroup
// drivers on machines that lack the real thing (cgroup v2 cannot run here).
// It behaves as the kernel's does where the drivers rely on it:
//  - mkdir makes the interface files, and only for controllers the parent has
//    handed down (v2 cgroup.subtree_control) or the tree carries (v1);
//  - a write to a file that does not exist fails, as cgroupfs cannot create files;
//  - "+name" writes to cgroup.subtree_control add to what is there;
//  - writing 1 to cgroup.kill, or `kill -KILL PID`, empties the processes;
//  - rmdir fails while the group has processes or child groups.
// Every step is recorded, as FakeHost does; outside the tree (a data
// directory the engine also works in) it is a plain FakeHost.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { commandLine, shellFor, type ExecOptions, type ExecResult } from "../../server/engine/host.ts";
import { FakeHost } from "./host.ts";

export interface FakeCgroupOptions {
  version: 1 | 2;
  /** Swap accounting: memory.memsw.* (v1), memory.swap.max (v2). Default true. */
  swapAccounting?: boolean;
  /** v2: kernel 5.14+ cgroup.kill. Default true. */
  cgroupKill?: boolean;
  /** v1: mount cpu and cpuacct together as cpu,cpuacct (with symlinks). Default false. */
  coMountCpu?: boolean;
  /** v1: what memory.use_hierarchy reads in new groups. Default "1". */
  useHierarchy?: "0" | "1";
  /** v1: whether memory.oom_control has an oom_kill line (kernel 4.13+). Default true. */
  oomKillLine?: boolean;
  /** v2: controllers the root already hands down. Default "cpuset cpu". */
  rootSubtreeControl?: string;
  /** v2: controllers the root offers. Default all of ours and a few more. */
  rootControllers?: string;
}

export class FakeCgroupFs extends FakeHost {
  private constructor(
    readonly root: string,
    private readonly options: Required<FakeCgroupOptions>,
  ) {
    super();
  }

  static async create(options: FakeCgroupOptions): Promise<FakeCgroupFs> {
    const root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "fake-cgroupfs-")));
    const full: Required<FakeCgroupOptions> = {
      swapAccounting: true,
      cgroupKill: true,
      coMountCpu: false,
      useHierarchy: "1",
      oomKillLine: true,
      rootSubtreeControl: "cpuset cpu",
      rootControllers: "cpuset cpu io memory hugetlb pids rdma misc",
      ...options,
    };
    const fake = new FakeCgroupFs(root, full);
    if (full.version === 2) {
      await fs.writeFile(path.join(root, "cgroup.controllers"), full.rootControllers + "\n");
      await fs.writeFile(path.join(root, "cgroup.subtree_control"), full.rootSubtreeControl + "\n");
      await fs.writeFile(path.join(root, "cgroup.procs"), "1\n");
    } else {
      const trees = full.coMountCpu ? ["memory", "cpu,cpuacct", "pids", "systemd"] : ["memory", "cpu", "cpuacct", "pids", "systemd"];
      for (const tree of trees) {
        await fs.mkdir(path.join(root, tree));
        await fs.writeFile(path.join(root, tree, "cgroup.procs"), "1\n");
      }
      await fs.mkdir(path.join(root, "unified"));
      await fs.writeFile(path.join(root, "unified", "cgroup.procs"), "1\n");
      if (full.coMountCpu) {
        await fs.symlink("cpu,cpuacct", path.join(root, "cpu"));
        await fs.symlink("cpu,cpuacct", path.join(root, "cpuacct"));
      }
    }
    return fake;
  }

  async cleanup(): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true });
  }

  /** Pretend processes live in a group (as if their pids had been written to it). */
  async addProcesses(group: string, pids: number[]): Promise<void> {
    await fs.writeFile(path.join(group, "cgroup.procs"), pids.map((p) => `${p}\n`).join(""));
  }

  async read(file: string): Promise<string> {
    return fs.readFile(file, "utf8");
  }

  /** Whether a path is in the pretend cgroup tree; elsewhere (a data directory) this is a plain FakeHost. */
  private inTree(file: string): boolean {
    return file.startsWith(`${this.root}/`);
  }

  override async mkdir(title: string, dir: string): Promise<void> {
    if (!this.inTree(dir)) return super.mkdir(title, dir);
    this.steps.push({ title, command: shellFor.mkdir(dir) });
    await fs.mkdir(dir);
    for (const [name, value] of Object.entries(await this.interfaceFiles(dir))) {
      await fs.writeFile(path.join(dir, name), value);
    }
  }

  override async writeFile(title: string, file: string, content: string): Promise<void> {
    if (!this.inTree(file)) return super.writeFile(title, file, content);
    this.steps.push({ title, command: shellFor.writeFile(file, content) });
    let current: string;
    try {
      current = await fs.readFile(file, "utf8");
    } catch {
      throw Object.assign(new Error(`ENOENT: cgroupfs cannot create ${file}`), { code: "ENOENT" });
    }
    const name = path.basename(file);
    if (name === "cgroup.subtree_control") {
      const enabled = new Set(current.split(/\s+/).filter(Boolean));
      for (const word of content.split(/\s+/).filter(Boolean)) {
        if (word.startsWith("+")) enabled.add(word.slice(1));
        else if (word.startsWith("-")) enabled.delete(word.slice(1));
        else throw new Error(`EINVAL: "${word}" written to cgroup.subtree_control`);
      }
      await fs.writeFile(file, [...enabled].join(" ") + "\n");
    } else if (name === "cgroup.kill") {
      if (content.trim() !== "1") throw new Error("EINVAL: cgroup.kill takes 1");
      await fs.writeFile(path.join(path.dirname(file), "cgroup.procs"), "");
    } else {
      await fs.writeFile(file, content);
    }
  }

  override async rmdir(title: string, dir: string): Promise<void> {
    if (!this.inTree(dir)) return super.rmdir(title, dir);
    this.steps.push({ title, command: shellFor.rmdir(dir) });
    const entries = await fs.readdir(dir, { withFileTypes: true });
    const procs = await fs.readFile(path.join(dir, "cgroup.procs"), "utf8").catch(() => "");
    if (entries.some((e) => e.isDirectory()) || procs.trim() !== "") {
      throw Object.assign(new Error(`EBUSY: ${dir} still has processes or child groups`), { code: "EBUSY" });
    }
    await fs.rm(dir, { recursive: true });
  }

  /** `kill -KILL PID…` takes the pids out of every group in the tree, as dying does. */
  override async exec(title: string, argv: string[], options?: ExecOptions): Promise<ExecResult> {
    if (argv[0] !== "kill") return super.exec(title, argv, options);
    this.steps.push({ title, command: commandLine(argv) });
    const killed = new Set(argv.slice(2));
    for (const procs of await this.procsFilesUnder(this.root)) {
      const left = (await fs.readFile(procs, "utf8")).split("\n").filter((p) => p && !killed.has(p));
      await fs.writeFile(procs, left.map((p) => `${p}\n`).join(""));
    }
    return { code: 0, stdout: "", stderr: "" };
  }

  private async procsFilesUnder(dir: string): Promise<string[]> {
    const found: string[] = [];
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) found.push(...(await this.procsFilesUnder(full)));
      else if (entry.name === "cgroup.procs") found.push(full);
    }
    return found;
  }

  /** The files the kernel would show in a new group at `dir`. */
  private async interfaceFiles(dir: string): Promise<Record<string, string>> {
    const o = this.options;
    if (o.version === 2) {
      const handedDown = (await fs.readFile(path.join(path.dirname(dir), "cgroup.subtree_control"), "utf8"))
        .split(/\s+/)
        .filter(Boolean);
      const files: Record<string, string> = {
        "cgroup.procs": "",
        "cgroup.controllers": handedDown.join(" ") + "\n",
        "cgroup.subtree_control": "\n",
        "cgroup.events": "populated 0\nfrozen 0\n",
        "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
      };
      if (o.cgroupKill) files["cgroup.kill"] = "";
      if (handedDown.includes("memory")) {
        Object.assign(files, {
          "memory.max": "max\n",
          "memory.current": "0\n",
          "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        });
        if (o.swapAccounting) files["memory.swap.max"] = "max\n";
      }
      if (handedDown.includes("cpu")) files["cpu.max"] = "max 100000\n";
      if (handedDown.includes("pids")) Object.assign(files, { "pids.max": "max\n", "pids.current": "0\n", "pids.events": "max 0\n" });
      return files;
    }
    const tree = path.relative(this.root, dir).split(path.sep)[0].split(",");
    const files: Record<string, string> = { "cgroup.procs": "", tasks: "", notify_on_release: "0\n" };
    if (tree.includes("memory")) {
      Object.assign(files, {
        "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.usage_in_bytes": "0\n",
        "memory.swappiness": "60\n",
        "memory.failcnt": "0\n",
        "memory.use_hierarchy": o.useHierarchy + "\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n" + (o.oomKillLine ? "oom_kill 0\n" : ""),
      });
      if (o.swapAccounting) files["memory.memsw.limit_in_bytes"] = "9223372036854771712\n";
    }
    if (tree.includes("cpu")) Object.assign(files, { "cpu.cfs_period_us": "100000\n", "cpu.cfs_quota_us": "-1\n" });
    if (tree.includes("cpuacct")) files["cpuacct.usage"] = "0\n";
    if (tree.includes("pids")) Object.assign(files, { "pids.max": "max\n", "pids.current": "0\n", "pids.events": "max 0\n" });
    return files;
  }
}
