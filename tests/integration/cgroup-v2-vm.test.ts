// The engine on a pure cgroup v2 host, whatever this host runs: boots Debian's
// own kernel under qemu with only the unified hierarchy
// (scripts/cgroup-v2-vm.sh), runs integration test files inside it with
// their own registry on the VM's loopback, and reads back what the VM
// reported on its console. The first boot builds the VM kit (about a minute);
// later runs reuse it.
import { spawn } from "node:child_process";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

/** The integration test files that run inside the VMs. */
const TEST_FILES = [
  "tests/integration/cgroups.test.ts",
  "tests/integration/limits.test.ts",
  "tests/integration/run.test.ts",
  // The nested profile's delegated subtree, on v2's rules (no internal processes, nsdelegate).
  "tests/integration/nested.test.ts",
];
/**
 * How many VMs share the files between them, booted at once. Each VM runs on
 * one host thread (see the script), so two keep this machine's two cores busy
 * and take half the time of one.
 */
const VM_COUNT = 2;

const SCRIPT = path.resolve(import.meta.dirname, "../../scripts/cgroup-v2-vm.sh");
/** Seconds a VM may run before the script kills qemu (its files take about 6 minutes here). */
const VM_TIMEOUT_S = 1500;
/** On top of that, a cold build of the kit. */
const KIT_BUILD_S = 300;
/**
 * The files' own timeouts are made for a real machine; under TCG everything
 * runs 10 to 20 times slower, so inside the VM they are raised.
 */
const VITEST = "npx --no-install vitest run --project integration --testTimeout=600000 --hookTimeout=900000";

/** Printed inside before the tests, as "KEY value" lines, for the host to check. */
const REPORT = [
  'echo "PG-VM-KERNEL $(uname -r)"',
  'echo "PG-VM-CONTROLLERS $(cat /sys/fs/cgroup/cgroup.controllers)"',
  // Every cgroup file system mounted, as "TYPE TARGET" lines joined by commas.
  'echo "PG-VM-CGROUP-MOUNTS $(findmnt -rn -t cgroup,cgroup2 -o FSTYPE,TARGET | paste -sd,)"',
  // Controllers bound to a v1 hierarchy: /proc/cgroups gives 0 for those on the unified one.
  "echo \"PG-VM-V1-CONTROLLERS $(awk 'NR > 1 && $2 != 0 { print $1 }' /proc/cgroups | paste -sd,)\"",
].join("; ");

interface VmRun {
  files: string[];
  status: number | null;
  /** The VM's console and the script's own messages, in order, without colour codes. */
  output: string;
}

function runInVm(files: string[]): Promise<VmRun> {
  const command = `${REPORT}; exec ${VITEST} ${files.join(" ")}`;
  const child = spawn("bash", [SCRIPT, "run", "--timeout", String(VM_TIMEOUT_S), "--", "bash", "-c", command], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (status) => resolve({ files, status, output: output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "") }));
  });
}

/** The value of the console line "KEY value" (empty when the line is there with no value). */
function reported(run: VmRun, key: string): string | undefined {
  return new RegExp(`^${key} ?(.*)$`, "m").exec(run.output)?.[1].trim();
}

let vms: VmRun[];

beforeAll(async () => {
  const groups = Array.from({ length: Math.min(VM_COUNT, TEST_FILES.length) }, (_, i) =>
    TEST_FILES.filter((_, j) => j % VM_COUNT === i),
  );
  vms = await Promise.all(groups.map(runInVm));
}, (VM_TIMEOUT_S + KIT_BUILD_S) * 1000);

describe("on a pure cgroup v2 machine (Debian's kernel under qemu)", () => {
  it("has only the unified hierarchy, offering memory, cpu, io and pids", () => {
    for (const vm of vms) {
      const kernel = reported(vm, "PG-VM-KERNEL");
      expect(kernel, vm.output).toMatch(/^\d+\.\d+\.\d+/);
      expect(reported(vm, "PG-VM-CONTROLLERS")?.split(" ")).toEqual(expect.arrayContaining(["memory", "cpu", "io", "pids"]));
      expect(reported(vm, "PG-VM-CGROUP-MOUNTS")).toBe("cgroup2 /sys/fs/cgroup");
      expect(reported(vm, "PG-VM-V1-CONTROLLERS")).toBe("");
    }
    console.log(`cgroup v2 VM: kernel ${reported(vms[0], "PG-VM-KERNEL")}, controllers: ${reported(vms[0], "PG-VM-CONTROLLERS")}`);
  });

  it.each(TEST_FILES)("passes %s", (file) => {
    const vm = vms.find((v) => v.files.includes(file))!;
    // vitest's line for a file whose tests all passed: " ✓  integration  FILE (N tests) TIME".
    const passed = vm.output.split("\n").some((line) => /^\s*✓/.test(line) && line.includes(` ${file} (`));
    expect(passed, `${file} failed inside the VM:\n${vm.output}`).toBe(true);
  });

  it("ends every VM's run with exit status 0 (no failure outside the files' tests)", () => {
    for (const vm of vms) expect(vm.status, `the run of ${vm.files.join(", ")} failed inside the VM:\n${vm.output}`).toBe(0);
  });
});
