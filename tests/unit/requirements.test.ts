// The one list of programs and packages (scripts/requirements.tsv): how it is
// read, that the checkout's own list holds what the engine runs, and what
// `playground doctor` says of a missing program.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkPrograms } from "../../server/engine/doctor.ts";
import { loadRequirements, parseRequirements, requirementsPath } from "../../server/engine/requirements.ts";

describe("parseRequirements", () => {
  it("reads tab-separated rows, skipping comments and blank lines", () => {
    const list = parseRequirements(
      ["# program\tpackage\tneeded by\twhat for", "", "ip\tiproute2\tengine\tthe bridge", "skopeo\tskopeo\ttests,bench\tpushes images\r", "/usr/include/stdio.h\tlibc6-dev\tengine\theaders"].join("\n"),
    );
    expect(list).toEqual([
      { program: "ip", pkg: "iproute2", needs: ["engine"], purpose: "the bridge" },
      { program: "skopeo", pkg: "skopeo", needs: ["tests", "bench"], purpose: "pushes images" },
      { program: "/usr/include/stdio.h", pkg: "libc6-dev", needs: ["engine"], purpose: "headers" },
    ]);
  });

  it("refuses a malformed row, naming its line", () => {
    expect(() => parseRequirements("# c\nip iproute2 engine the bridge")).toThrow(/line 2: expected four tab-separated fields/);
    expect(() => parseRequirements("ip\tiproute2\tengine\t")).toThrow(/line 1: expected four/);
    expect(() => parseRequirements("ip\tiproute2\teverybody\tthe bridge")).toThrow(/line 1: "everybody" is not one of engine, tests, bench/);
    expect(() => parseRequirements("ip\tIP Route\tengine\tthe bridge")).toThrow(/"IP Route" is not a Debian package name/);
  });
});

describe("the checkout's list", () => {
  const list = loadRequirements();
  const engine = new Map(list.filter((r) => r.needs.includes("engine")).map((r) => [r.program, r.pkg]));

  it("is found from the engine's folder and from a bundle's (dist/)", () => {
    const root = path.dirname(path.dirname(requirementsPath()));
    expect(requirementsPath(path.join(root, "dist"))).toBe(requirementsPath());
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "pg-requirements-"));
    try {
      expect(() => requirementsPath(elsewhere)).toThrow(/scripts\/requirements.tsv was not found above/);
    } finally {
      fs.rmdirSync(elsewhere);
    }
  });

  it("names each program the engine runs, with its package", () => {
    expect(Object.fromEntries(engine)).toMatchObject({
      ip: "iproute2",
      nft: "nftables",
      nsenter: "util-linux",
      "mkfs.ext4": "e2fsprogs",
      setfattr: "attr",
      getfattr: "attr",
      losetup: "mount",
      umount: "mount",
      sysctl: "procps",
      kill: "procps",
      zstd: "zstd",
      cc: "gcc",
      "/usr/include/stdio.h": "libc6-dev",
    });
    // The shim does these itself now; no engine code runs the programs.
    for (const gone of ["unshare", "setpriv", "mount", "iptables"]) expect(engine.has(gone)).toBe(false);
  });

  it("lists each program once", () => {
    const programs = list.map((r) => r.program);
    expect(programs.length).toBe(new Set(programs).size);
  });
});

describe("doctor's program checks", () => {
  const list = parseRequirements(
    ["ip\tiproute2\tengine\tthe bridge", "mkfs.ext4\te2fsprogs\tengine\tformats the writable layer", "skopeo\tskopeo\ttests\tpushes images"].join("\n"),
  );

  it("checks only the engine's programs, and says where each was found", () => {
    const checks = checkPrograms(list, (p) => `/usr/sbin/${p}`);
    expect(checks).toEqual([
      { name: "ip", ok: true, detail: "/usr/sbin/ip (the bridge)" },
      { name: "mkfs.ext4", ok: true, detail: "/usr/sbin/mkfs.ext4 (formats the writable layer)" },
    ]);
  });

  it("names the package that brings a missing program", () => {
    const checks = checkPrograms(list, (p) => (p === "ip" ? "/usr/sbin/ip" : undefined));
    expect(checks[1]).toEqual({ name: "mkfs.ext4", ok: false, detail: "not found (formats the writable layer)", fix: "apt-get install e2fsprogs" });
  });
});

describe("the set-up's install_requirements (scripts/requirements.sh)", () => {
  const list = loadRequirements();
  const root = path.dirname(path.dirname(requirementsPath()));
  const packagesFor = (...needs: string[]) => [...new Set(list.filter((r) => r.needs.some((n) => needs.includes(n))).map((r) => r.pkg))];

  /** Runs install_requirements with stand-ins for dpkg-query (INSTALLED are installed) and apt-get (records its arguments). */
  function install(needs: string[], installed: string[]): string[][] {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "pg-setup-"));
    try {
      const log = path.join(bin, "apt-get.log");
      fs.writeFileSync(path.join(bin, "dpkg-query"), `#!/bin/sh\nfor p in $INSTALLED; do [ "$p" = "$3" ] && { printf 'install ok installed'; exit 0; }; done\nexit 1\n`, { mode: 0o755 });
      fs.writeFileSync(path.join(bin, "apt-get"), `#!/bin/sh\necho "$*" >> ${log}\n`, { mode: 0o755 });
      execFileSync("bash", ["-euo", "pipefail", "-c", `source scripts/requirements.sh; install_requirements ${needs.join(" ")}`], {
        cwd: root,
        env: { PATH: `${bin}:/usr/bin:/bin`, INSTALLED: installed.join(" ") } as unknown as NodeJS.ProcessEnv,
        stdio: ["ignore", "ignore", "inherit"],
      });
      return fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").map((line) => line.split(" ")) : [];
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  }

  it("installs the packages of the rows the caller needs, each once, and only the missing ones", () => {
    const calls = install(["engine"], ["iproute2", "coreutils"]);
    expect(calls[0]).toEqual(["update", "-qq"]);
    const installed = calls[1].slice(calls[1].indexOf("--no-install-recommends") + 1);
    expect(installed).toEqual(packagesFor("engine").filter((p) => p !== "iproute2" && p !== "coreutils"));
    expect(installed).toContain("nftables");
    expect(installed).not.toContain("chromium");
  });

  it("adds the tests' packages for npm test, and the bench's for npm run bench", () => {
    const forTests = install(["engine", "tests"], [])[1];
    expect(forTests).toEqual(expect.arrayContaining([...packagesFor("engine", "tests"), "chromium", "docker-registry"]));
    expect(forTests).toEqual(expect.arrayContaining(["qemu-system-x86", "mmdebstrap"]));
    expect(forTests).not.toContain("podman");
    const forBench = install(["engine", "bench"], [])[1];
    expect(forBench).toEqual(expect.arrayContaining(["mmdebstrap", "skopeo", "nftables"]));
    expect(forBench).toEqual(expect.arrayContaining(["podman", "runc", "chromium"]));
  });

  it("does nothing when every package is there", () => {
    expect(install(["engine", "tests", "bench"], packagesFor("engine", "tests", "bench"))).toEqual([]);
  });
});
