// A class, end to end, in Debian's Chromium against the real server: students
// start containers and use their shells, a reload reattaches, each student's
// container is their own, the instructor watches and ends sessions, and the
// admin reset ends the rest and leaves nothing behind on the host.
//
// The steps build on each other (the sessions started first are watched and
// reset later), so they run in order; one failing skips the rest.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { expect, test, type Browser, type BrowserContext, type Page } from "@playwright/test";
import type { SessionRow } from "../server/common/protocol.ts";
import { run, server, startSession, terminalText, typeLine, waitForTerminal } from "./server.ts";

test.describe.configure({ mode: "serial" });

const root = path.resolve(import.meta.dirname, "..");
/** Set PLAYGROUND_UPDATE_SCREENSHOTS=1 to refresh docs/student.png and docs/instructor.png. */
const updateScreenshots = process.env.PLAYGROUND_UPDATE_SCREENSHOTS === "1";

const contexts: BrowserContext[] = [];
let ada: Page;
let grace: Page;
let instructor: Page;

/** A separate browser (its own cookies): one student, or the instructor. */
async function newBrowserPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ baseURL: server.url });
  contexts.push(context);
  return context.newPage();
}

/** `ID:hostname@address/prefix`, printed by the container's shell. */
const IDENTITY = 'echo "ID:$(hostname)@$(ip -4 -o addr show scope global | awk \'{print $4}\' | head -n1)"';
const IDENTITY_LINE = /ID:([^\s$@]+)@([\d.]+)\/\d+/;

async function sessionsFromApi(token: string): Promise<{ status: number; rows: SessionRow[] }> {
  const res = await fetch(`${server.url}/api/sessions`, { headers: { authorization: `Bearer ${token}` } });
  const body = res.ok ? ((await res.json()) as { sessions: SessionRow[] }) : { sessions: [] };
  return { status: res.status, rows: body.sessions };
}

test.afterAll(async () => {
  for (const context of contexts) await context.close();
});

test("a student starts a session and gets a shell in Alpine 3.20.3", async ({ browser }) => {
  ada = await newBrowserPage(browser);
  await startSession(ada, "Ada");
  await expect(ada.getByTestId("status-bar")).toContainText("alpine");
  await typeLine(ada, "cat /etc/alpine-release");
  await waitForTerminal(ada, /^3\.20\.3\s*$/m);
});

test("a student sees how their container was built, step by step, and goes back to the shell", async () => {
  await ada.getByRole("button", { name: "How was this built?" }).click();
  const panel = ada.getByRole("dialog", { name: "How your container was built" });
  await expect(panel).toBeVisible();
  const commands = await panel.locator(".step-command").allTextContents();
  const titles = await panel.locator(".step-title").allTextContents();
  expect(titles.length).toBe(commands.length);
  expect(titles.every((title) => title.trim().length > 0)).toBe(true);
  // The lesson: new namespaces, a new root, a network link and a cgroup limit.
  expect(commands.some((c) => /\bunshare\b/.test(c)), "unshare").toBe(true);
  expect(commands.some((c) => c.includes("pivot_root")), "pivot_root").toBe(true);
  expect(commands.some((c) => /\bip link\b/.test(c)), "ip link").toBe(true);
  expect(commands.some((c) => /cgroup\.procs|memory/.test(c)), "a cgroup write").toBe(true);

  // Escape closes it, and the keyboard goes back to the shell without a click.
  await ada.keyboard.press("Escape");
  await expect(panel).toBeHidden();
  await ada.keyboard.type('echo "after-steps-$((6*7))"');
  await ada.keyboard.press("Enter");
  await waitForTerminal(ada, /^after-steps-42\s*$/m);

  // The close button does the same.
  await ada.getByRole("button", { name: "How was this built?" }).click();
  await expect(panel).toBeVisible();
  await panel.getByRole("button", { name: "Close" }).click();
  await expect(panel).toBeHidden();
  await ada.keyboard.type('echo "closed-$((6*8))"');
  await ada.keyboard.press("Enter");
  await waitForTerminal(ada, /^closed-48\s*$/m);
});

test("a reload reattaches to the same shell, with its variables", async () => {
  await run(ada, "LESSON=namespaces-$((40+2))");
  const containerId = await ada.getByTestId("container-id").textContent();

  await ada.reload();
  await expect(ada.getByTestId("container-id")).toHaveText(containerId!);
  // The recent output is replayed into the fresh page.
  await waitForTerminal(ada, /^3\.20\.3\s*$/m);
  await typeLine(ada, 'echo "lesson is $LESSON"');
  await waitForTerminal(ada, /lesson is namespaces-42/);
});

test("a second student gets a container of their own", async ({ browser }) => {
  grace = await newBrowserPage(browser);
  await startSession(grace, "Grace");
  const [, graceHost, graceIp] = (await run(grace, IDENTITY)).match(IDENTITY_LINE)!;
  const [, adaHost, adaIp] = (await run(ada, IDENTITY)).match(IDENTITY_LINE)!;
  expect(graceHost).not.toBe(adaHost);
  expect(graceIp).not.toBe(adaIp);
  await expect(grace.getByTestId("container-id")).not.toHaveText((await ada.getByTestId("container-id").textContent())!);
  // Grace's shell does not know Ada's variable.
  await typeLine(grace, 'echo "lesson is [$LESSON]"');
  await waitForTerminal(grace, /lesson is \[\]/);

  if (updateScreenshots) {
    // A clean screen with a few commands a first lesson would use (no test markers).
    await typeLine(ada, "clear");
    // Keys typed before the shell's next prompt can be lost while it asks the terminal where its cursor is:
    // wait for the prompt at the top of the cleared screen.
    await expect.poll(() => ada.evaluate(() => [window.__term?.buffer.active.cursorX, window.__term?.buffer.active.cursorY])).toEqual([4, 0]);
    await typeLine(ada, "cat /etc/os-release | head -n 3; id; hostname; ip -4 addr show eth0; ps");
    await waitForTerminal(ada, /^\s*\d+ root\s+\S+ ps\n\/ #/m);
    await ada.screenshot({ path: path.join(root, "docs", "student.png") });
  }
});

test("the instructor sees both students and watches a terminal live", async ({ browser }) => {
  instructor = await newBrowserPage(browser);
  await instructor.goto(`/instructor?token=${server.instructorToken}`);
  // The token leaves the address bar (it stays in this tab's sessionStorage).
  await expect(instructor).toHaveURL(/\/instructor$/);
  const live = instructor.getByTestId("live-sessions");
  await expect(live.locator("tr[data-session-id]", { hasText: "Ada" })).toBeVisible();
  await expect(live.locator("tr[data-session-id]", { hasText: "Grace" })).toBeVisible();
  await expect(live.locator("tr[data-session-id]", { hasText: "Ada" })).toContainText("running");

  await run(ada, 'echo "before-watch-$((1+1))"');
  await live.locator("tr[data-session-id]", { hasText: "Ada" }).click();
  await expect(instructor.getByTestId("viewer")).toContainText("Ada");
  // The replay shows what Ada did before the instructor looked…
  await waitForTerminal(instructor, /^before-watch-2$/m);
  // …and what she types now appears as she types it.
  await typeLine(ada, "echo watched-$((20+22))");
  await waitForTerminal(instructor, /^watched-42\s*$/m);

  if (updateScreenshots) await instructor.screenshot({ path: path.join(root, "docs", "instructor.png") });
});

test("the instructor ends a session, after confirming, and the student is told", async ({ browser }) => {
  const linus = await newBrowserPage(browser);
  await startSession(linus, "Linus");
  const row = instructor.getByTestId("live-sessions").locator("tr[data-session-id]", { hasText: "Linus" });
  await expect(row).toBeVisible();

  // Dismissing the confirmation ends nothing.
  instructor.once("dialog", (dialog) => dialog.dismiss());
  await row.getByRole("button", { name: "End" }).click();
  await run(linus, "true");

  instructor.once("dialog", (dialog) => dialog.accept());
  await row.getByRole("button", { name: "End" }).click();
  await expect(linus.getByTestId("banner")).toContainText(/ended/i);
  await expect(linus.getByRole("button", { name: "Start a new session" })).toBeVisible();
  await expect(instructor.getByTestId("ended-sessions")).toContainText("Linus");
  await expect(row).toHaveCount(0);
});

test("admin and instructor requests without the right token change nothing", async () => {
  for (const authorization of [undefined, "Bearer wrong-token-000000", `Bearer ${server.instructorToken}`]) {
    const res = await fetch(`${server.url}/api/admin/reset`, {
      method: "POST",
      headers: authorization ? { authorization } : {},
    });
    expect(res.status, `reset with ${authorization ?? "no token"}`).toBe(401);
  }
  const { rows } = await sessionsFromApi(server.instructorToken);
  const running = rows.filter((row) => row.state === "running").map((row) => row.studentName);
  expect(running).toEqual(expect.arrayContaining(["Ada", "Grace"]));
  await run(ada, "true");
  await run(grace, "true");
});

test("the admin reset ends every session, the students are told, and nothing is left behind", async () => {
  const res = await fetch(`${server.url}/api/admin/reset`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminToken}` },
  });
  expect(res.status).toBe(200);
  const summary = (await res.json()) as { ok: boolean };
  expect(summary.ok).toBe(true);

  for (const student of [ada, grace]) {
    await expect(student.getByTestId("banner")).toContainText(/session ended/i);
    await expect(student.getByTestId("banner")).toContainText(/reset/i);
    await expect(student.getByRole("button", { name: "Start a new session" })).toBeVisible();
  }
  // The terminal stays on screen with what the student did.
  expect(await terminalText(ada)).toMatch(/^before-watch-2$/m);

  const { rows } = await sessionsFromApi(server.adminToken);
  expect(rows.filter((row) => row.state !== "ended")).toEqual([]);
  await expect(instructor.getByTestId("ended-sessions")).toContainText("Ada");
  await expect(instructor.getByTestId("ended-sessions")).toContainText("Grace");

  // `playground doctor --leaks` exits 0 only when no kernel object of the playground is left.
  const doctor = await promisify(execFile)(process.execPath, ["bin/playground.mjs", "doctor", "--leaks"], {
    cwd: root,
    env: { ...process.env, PLAYGROUND_DATA_DIR: server.dataDir },
  }).catch((error: { code?: number; stdout?: string; stderr?: string }) => error);
  expect("code" in doctor ? doctor.code : 0, `doctor --leaks:\n${doctor.stdout}${doctor.stderr}`).toBe(0);
});
