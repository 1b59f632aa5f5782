// The shipped lessons, end to end in Chromium: a student picks each one in
// the panel beside the terminal, types what a student who understood the
// step would type, and sees every step's check pass (✓), the checks made
// from the host against the real container. The build-your-own-container
// lesson runs in a room switched to the nested profile.
import path from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { run, server, startSession, typeLine, waitForTerminal } from "./server.ts";

const root = path.resolve(import.meta.dirname, "..");
/** Set PLAYGROUND_UPDATE_SCREENSHOTS=1 to refresh docs/lesson.png. */
const updateScreenshots = process.env.PLAYGROUND_UPDATE_SCREENSHOTS === "1";

/** Marks a line that is typed without waiting for it to finish (nothing after it on its line would run). */
const TYPED_ONLY = "\u0000";

/** What a student types for each step of each lesson. */
const SCRIPTS: Record<string, string[][]> = {
  "what-is-a-container": [
    ["hostname > ~/hostname.txt"],
    ["sleep 1000 & true"],
    ["readlink /proc/self/ns/net | tr -dc 0-9 > ~/netns.txt"],
    ["awk '$1 == 0 {print $2}' /proc/self/uid_map > ~/hostuid.txt"],
  ],
  limits: [
    ["(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes) > ~/memory-limit.txt"],
    ["dd if=/dev/zero of=/dev/null bs=300M count=1"],
    // The shell gives up the rest of the line at the first "can't fork": the clean-up is a line of its own.
    [`${TYPED_ONLY}for i in $(seq 600); do sleep 60 & done 2>/dev/null`, "kill -9 -1"],
  ],
  "network-path": [
    ["ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1 > ~/ip.txt"],
    ["ip -o link show eth0 | sed -n 's/.*eth0@if\\([0-9]*\\).*/\\1/p' > ~/peer.txt"],
    ["ip route | awk '/default/ {print $3}' > ~/gateway.txt"],
  ],
};

async function studentWithLesson(page: Page, lesson: string): Promise<void> {
  await startSession(page, `lesson ${lesson}`);
  await page.getByTestId(`lesson-${lesson}`).click();
  await expect(page.getByTestId("lesson-step")).toBeVisible();
}

/** Types the step's lines, then waits for its ✓ (the server checks every few seconds; Check asks now). */
async function passStep(page: Page, index: number, lines: string[]): Promise<void> {
  await page.getByTestId(`lesson-step-${index}`).click();
  for (const line of lines) {
    if (line.startsWith(TYPED_ONLY)) await typeLine(page, line.slice(TYPED_ONLY.length));
    else await run(page, line, 30_000);
  }
  const passed = page.getByTestId(`passed-${index}`);
  if (!(await passed.isVisible())) await page.getByTestId("lesson-check").click().catch(() => {});
  await expect(passed).toBeVisible({ timeout: 20_000 });
}

/** docs/lesson.png: the panel with two steps passed (✓) beside a clean screen with what a student would look at. */
async function lessonScreenshot(page: Page): Promise<void> {
  await typeLine(page, "clear");
  // Keys typed before the shell's next prompt can be lost while it asks the terminal where its cursor is:
  // wait for the prompt at the top of the cleared screen.
  await expect.poll(() => page.evaluate(() => window.__term?.buffer.active.cursorY)).toBe(0);
  await typeLine(page, "cat ~/hostname.txt; ps");
  await waitForTerminal(page, /^\s*\d+ root\s+\S+ ps\n\S* ?#/m);
  await page.screenshot({ path: path.join(root, "docs", "lesson.png") });
}

for (const [lesson, steps] of Object.entries(SCRIPTS)) {
  test(`the "${lesson}" lesson: a student who does each step sees every check pass`, async ({ browser }) => {
    const context = await browser.newContext({ baseURL: server.url });
    try {
      const page = await context.newPage();
      await studentWithLesson(page, lesson);
      // Nothing passes before the student has done anything.
      await page.getByTestId("lesson-check").click();
      await expect(page.getByTestId("lesson-hint")).toBeVisible();
      await expect(page.getByTestId("passed-0")).toHaveCount(0);
      for (const [index, lines] of steps.entries()) {
        await passStep(page, index, lines);
        if (updateScreenshots && lesson === "what-is-a-container" && index === 1) await lessonScreenshot(page);
      }
      await expect(page.getByTestId("lesson-done")).toBeVisible();
      await page.getByRole("button", { name: "End session" }).click();
    } finally {
      await context.close();
    }
  });
}

test("the build-your-own-container lesson, in a room with the nested profile", async ({ browser }) => {
  const admin = { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" };
  const set = await fetch(`${server.url}/api/admin/room`, { method: "PUT", headers: admin, body: JSON.stringify({ profile: "nested" }) });
  expect(set.status).toBe(200);
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    await studentWithLesson(page, "build-your-own-container");
    // Into new namespaces: the rest of the lesson happens in this shell.
    await page.getByTestId("lesson-step-0").click();
    await typeLine(page, "unshare --user --map-root-user --mount --pid --uts --net --ipc --fork --mount-proc sh");
    await run(page, "hostname box", 30_000);
    await expect(page.getByTestId("passed-0")).toBeVisible({ timeout: 20_000 });
    await passStep(page, 1, [
      "cg=/sys/fs/cgroup/memory",
      "if [ ! -d $cg ]; then cg=/sys/fs/cgroup; mkdir $cg/init; for p in $(cat $cg/cgroup.procs); do echo $p > $cg/init/cgroup.procs; done; echo +memory > $cg/cgroup.subtree_control; fi",
      "mkdir $cg/box; echo 50000000 > $cg/box/memory.limit_in_bytes 2>/dev/null || echo 50000000 > $cg/box/memory.max",
      "echo $$ > $cg/box/cgroup.procs; dd if=/dev/zero of=/dev/null bs=100M count=1",
    ]);
    await passStep(page, 2, ["unshare --net sleep 1000 & sleep 1", "ip link add v0 type veth && ip link set veth0 netns $!"]);
    await passStep(page, 3, [
      "mkdir -p /tmp/newroot && cp -a /bin /etc /lib /sbin /usr /tmp/newroot/ && mkdir -p /tmp/newroot/proc /tmp/newroot/tmp",
      "mount -t proc proc /tmp/newroot/proc",
      // An interactive shell in the new root: it runs until the session ends.
      `${TYPED_ONLY}chroot /tmp/newroot sh`,
    ]);
    await expect(page.getByTestId("lesson-done")).toBeVisible();
    await page.getByRole("button", { name: "End session" }).click();
  } finally {
    await context.close();
    await fetch(`${server.url}/api/admin/room`, { method: "PUT", headers: admin, body: JSON.stringify({ profile: "default" }) });
  }
});
