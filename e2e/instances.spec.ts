// A two-instance lab in Chromium: "+ instance" opens a second container in a
// tab of its own, named node2; each reaches the other by name over the
// student's private network; switching tabs reattaches to each shell as it
// was; ending the first ends both.
import path from "node:path";
import { expect, test } from "@playwright/test";
import { run, server, startSession, waitForTerminal } from "./server.ts";

const root = path.resolve(import.meta.dirname, "..");
const updateScreenshots = process.env.PLAYGROUND_UPDATE_SCREENSHOTS === "1";

test("a student adds an instance, and the two reach each other by name", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: server.url, viewport: { width: 1200, height: 700 } });
  try {
    const page = await context.newPage();
    await startSession(page, "Lin");
    await run(page, "export WHERE=first-$((1+1))");

    await page.getByTestId("instance-add").click();
    await expect(page).toHaveURL(/\?instance=2$/);
    await expect(page.getByTestId("container-id")).toBeVisible({ timeout: 45_000 });
    // Keys typed while ash asks the terminal where the cursor is can be lost (as e2e/server.ts's startSession
    // knows): a first line whose loss does no harm, then the real ones.
    await waitForTerminal(page, /# $/m, 30_000);
    await run(page, "true", 30_000);
    expect(await run(page, "hostname", 30_000)).toMatch(/^node2$/m);
    await expect(page.getByTestId("instance-tab-1")).toHaveText("node1");
    expect(await run(page, "ping -c 1 -W 2 node1 | grep -o '1 packets received'", 30_000)).toMatch(/1 packets received/);

    // Back to the first: the same shell, its variable still set.
    await page.getByTestId("instance-tab-1").click();
    await expect(page).not.toHaveURL(/instance=/);
    await run(page, "true", 30_000);
    expect(await run(page, 'echo "where: $WHERE"', 30_000)).toMatch(/where: first-2/);
    expect(await run(page, "ping -c 1 -W 2 node2 | grep -o '1 packets received'", 30_000)).toMatch(/1 packets received/);
    if (updateScreenshots) await page.screenshot({ path: path.join(root, "docs", "instances.png") });

    // Ending the first ends the second too: its tab's page says so.
    await page.getByRole("button", { name: "End session" }).click();
    await expect(page.getByTestId("banner")).toBeVisible();
    await page.goto("/?instance=2");
    await expect(page.getByTestId("banner")).toContainText(/start it again in the first tab|ended/i, { timeout: 20_000 });
  } finally {
    await context.close();
  }
});
