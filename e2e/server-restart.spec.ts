// A page open across a server restart (a crash, an upgrade) reconnects by
// itself: the server is killed (SIGKILL) and started again, and the same page,
// never reloaded, finds its shell as it was, variables and all.
//
// The shared server ends its sessions when it stops (PLAYGROUND_END_ON_STOP=1),
// so this spec runs a server of its own whose sessions outlive it, on its own
// port (kept across the restart, as an operator's is) and data directory, with
// the browser tests' build of the pages. The playground's bridge and firewall
// are the host's, shared by every server on it: the shared server is reset
// first, so this spec's server is the only one with containers. At the end its
// sessions are reset, it stops, and `playground doctor --leaks` must find
// nothing (TestServer.stop()).
import { expect, test, type BrowserContext, type Page } from "@playwright/test";
import { freePort } from "../tests/fixtures/registry.ts";
import { ADMIN_TOKEN, JOIN_CODE, startServer, type TestServer } from "../tests/fixtures/web-server.ts";
import { E2E_DIST } from "./global-setup.ts";
import { resetRoom, run, server, startSession, typeLine, waitForTerminal } from "./server.ts";

test.describe.configure({ mode: "serial" });

let room: TestServer | undefined;
/** True while this spec's server is killed and not started again yet. */
let down = false;
let context: BrowserContext;
let page: Page;

test.beforeAll(async ({ browser }) => {
  await resetRoom();
  const port = await freePort();
  room = await startServer(server.registry, {
    PLAYGROUND_WEB_UI: "1",
    PLAYGROUND_PORT: String(port),
    PLAYGROUND_NEXT_DIST: E2E_DIST,
    NODE_ENV: "production",
    // Sessions run on when the server stops: that is what is under test.
    PLAYGROUND_END_ON_STOP: "0",
  });
  await room.waitForLog(/^default image ready$/);
  context = await browser.newContext({ baseURL: room.url });
  page = await context.newPage();
});

test.afterAll(async () => {
  await context?.close();
  if (!room) return;
  // A test failed before the end: its sessions still run. A killed server is started again to end them.
  if (down) room = await room.restart("SIGKILL");
  await resetRoom(room.url, ADMIN_TOKEN);
  await room.stop();
});

test("a page open across a server restart reconnects by itself and finds its shell", async () => {
  await startSession(page, "Grace", JOIN_CODE);
  await run(page, "LESSON=survived-$((40+2))");
  const containerId = await page.getByTestId("container-id").textContent();
  // A mark on this document: a reload would lose it.
  await page.evaluate(() => Object.assign(window, { __beforeRestart: true }));

  down = true;
  await room!.kill("SIGKILL");
  await expect(page.getByTestId("connection")).toHaveText(/reconnecting/);
  room = await room!.restart("SIGKILL");
  down = false;

  await expect(page.getByTestId("connection")).toHaveText("connected", { timeout: 30_000 });
  await expect(page.getByTestId("container-id")).toHaveText(containerId!);
  await expect(page.getByTestId("banner")).toHaveCount(0);
  expect(await page.evaluate(() => "__beforeRestart" in window), "the same page, not reloaded").toBe(true);
  await typeLine(page, 'echo "lesson is $LESSON"');
  await waitForTerminal(page, /lesson is survived-42/);
});

test("the admin reset ends the session, and the server leaves nothing behind", async () => {
  await resetRoom(room!.url, ADMIN_TOKEN);
  await expect(page.getByTestId("banner")).toContainText(/session ended/i);
  // SIGTERM, then `playground doctor --leaks` on its data directory: it throws if anything is left.
  await room!.stop();
  room = undefined;
});
