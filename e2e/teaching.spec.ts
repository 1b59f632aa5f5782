// The teaching console in Debian's Chromium against the real server: the
// instructor's notice on a student's page, a raised hand first in the
// instructor's list, a take-over with the student's consent, the replay of a
// session's recording in the browser (and its download, by the instructor
// and by the student), and how a session's container was built, with times.
//
// The steps build on each other (one class: Marie and Pierre), so they run
// in order; one failing skips the rest.
import fs from "node:fs";
import path from "node:path";
import { expect, test, type Browser, type BrowserContext, type Page } from "@playwright/test";
import { run, server, startSession, terminalText, typeLine, waitForTerminal } from "./server.ts";

test.describe.configure({ mode: "serial" });

const root = path.resolve(import.meta.dirname, "..");
/** Set PLAYGROUND_UPDATE_SCREENSHOTS=1 to refresh docs/replay.png. */
const updateScreenshots = process.env.PLAYGROUND_UPDATE_SCREENSHOTS === "1";

const contexts: BrowserContext[] = [];
let marie: Page;
let pierre: Page;
let instructor: Page;

async function newBrowserPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ baseURL: server.url, acceptDownloads: true });
  contexts.push(context);
  return context.newPage();
}

const liveRow = (name: string) => instructor.getByTestId("live-sessions").locator("tr[data-session-id]", { hasText: name });

test.afterAll(async () => {
  // The room is left empty for the specs that follow.
  await fetch(`${server.url}/api/admin/reset`, { method: "POST", headers: { authorization: `Bearer ${server.adminToken}` } });
  for (const context of contexts) await context.close();
});

test("the instructor's notice appears on a student's page, which may dismiss it", async ({ browser }) => {
  marie = await newBrowserPage(browser);
  await startSession(marie, "Marie");
  instructor = await newBrowserPage(browser);
  await instructor.goto(`/instructor?token=${server.instructorToken}`);
  await expect(liveRow("Marie")).toBeVisible();

  await instructor.getByLabel("Notice to the room").fill("Look at the projector, please");
  await instructor.getByRole("button", { name: "Show to the room" }).click();
  await expect(instructor.getByTestId("notice-shown")).toContainText("Look at the projector, please");
  const banner = marie.getByTestId("notice");
  await expect(banner).toContainText("Look at the projector, please");
  await banner.getByRole("button", { name: "Dismiss" }).click();
  await expect(banner).toBeHidden();

  // A new notice shows again; taking it down removes it.
  await instructor.getByLabel("Notice to the room").fill("Two minutes left");
  await instructor.getByRole("button", { name: "Show to the room" }).click();
  await expect(banner).toContainText("Two minutes left");
  await instructor.getByTestId("notice-shown").getByRole("button", { name: "Take down" }).click();
  await expect(banner).toBeHidden();
  await expect(instructor.getByTestId("notice-shown")).toBeHidden();
});

test("a raised hand puts the student first in the instructor's list, until the instructor lowers it", async ({ browser }) => {
  pierre = await newBrowserPage(browser);
  await startSession(pierre, "Pierre");
  const rows = instructor.getByTestId("live-sessions").locator("tr[data-session-id]");
  // The newest session comes first…
  await expect(rows.first()).toContainText("Pierre");
  await marie.getByRole("button", { name: "Raise hand" }).click();
  await expect(marie.getByRole("button", { name: /Hand raised/ })).toBeVisible();
  // …unless a hand is raised.
  await expect(rows.first()).toContainText("Marie");
  await expect(rows.first().getByTestId("hand")).toBeVisible();

  await rows.first().getByRole("button", { name: "Lower" }).click();
  await expect(marie.getByRole("button", { name: "Raise hand" })).toBeVisible();
  await expect(rows.first()).toContainText("Pierre");
});

test("with the student's consent the instructor types into their terminal, and the student sees it", async () => {
  await liveRow("Marie").click();
  await expect(instructor.getByTestId("viewer")).toContainText("read-only");
  // Without consent, there is no way to type.
  await expect(instructor.getByLabel("Type in this terminal")).toHaveCount(0);

  await marie.getByLabel("Let the instructor type").check();
  await instructor.getByLabel("Type in this terminal").check();
  await expect(instructor.getByTestId("viewer")).toContainText("you are typing");
  await typeLine(instructor, "echo took-over-$((6*7))");
  await waitForTerminal(marie, /^took-over-42\s*$/m);
  await expect(marie.getByTestId("typing-notice")).toBeVisible();

  // Consent withdrawn: the viewer is read-only again.
  await marie.getByLabel("Let the instructor type").uncheck();
  await expect(instructor.getByLabel("Type in this terminal")).toHaveCount(0);
  await expect(instructor.getByTestId("viewer")).toContainText("read-only");
});

test("the replay of a student's recording shows what they typed, jumps to markers, and downloads as asciicast", async () => {
  await run(marie, "echo replayed-$((6*7))");
  await liveRow("Marie").getByRole("button", { name: "Replay" }).click();
  const replay = instructor.getByTestId("replay");
  await expect(replay).toContainText("Marie");
  const markers = replay.getByRole("list", { name: "Markers" });
  await expect(markers).toContainText("How was this built?");

  await replay.getByLabel("Speed").selectOption("8");
  await replay.getByRole("button", { name: "Play" }).click();
  await waitForTerminal(instructor, /^replayed-42\s*$/m);
  await waitForTerminal(instructor, /^took-over-42\s*$/m);
  await expect(replay.getByRole("button", { name: "Play" })).toBeVisible(); // at the end, it stops

  // The build marker is near the start: jumping there starts the screen over.
  await markers.getByRole("button", { name: /How was this built\?/ }).click();
  await expect.poll(() => terminalText(instructor)).not.toMatch(/replayed-42/);
  if (updateScreenshots) {
    await replay.getByRole("button", { name: "Play" }).click();
    await waitForTerminal(instructor, /^replayed-42\s*$/m);
    await instructor.screenshot({ path: path.join(root, "docs", "replay.png") });
  }

  const [download] = await Promise.all([instructor.waitForEvent("download"), replay.getByRole("button", { name: "Download .cast" }).click()]);
  expect(download.suggestedFilename()).toMatch(/^playground-Marie-[A-Za-z0-9_-]+\.cast$/);
  const header = JSON.parse(fs.readFileSync((await download.path())!, "utf8").split("\n")[0]);
  expect(header).toMatchObject({ version: 2, width: expect.any(Number), height: expect.any(Number) });

  // The student may download their own.
  const [own] = await Promise.all([marie.waitForEvent("download"), marie.getByRole("link", { name: "Download recording" }).click()]);
  expect(fs.readFileSync((await own.path())!, "utf8")).toMatch(/replayed-42/);
});

test("the instructor sees how a student's container was built, step by step with times", async () => {
  await liveRow("Pierre").getByRole("button", { name: "Steps" }).click();
  const panel = instructor.getByRole("dialog", { name: "How Pierre's container was built" });
  await expect(panel).toBeVisible();
  expect(await panel.locator(".step-command").count()).toBeGreaterThan(10);
  expect(await panel.locator(".step-time").count()).toBeGreaterThan(10);
  await expect(panel.locator(".step-time").first()).toHaveText(/^[\d.]+ ms$/);
  await panel.getByRole("button", { name: "Close" }).click();
  await expect(panel).toBeHidden();
});
