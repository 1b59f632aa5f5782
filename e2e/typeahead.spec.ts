// Typeahead, as on a real terminal: what a student types right after pressing
// Start, while the container is still being made and before the first prompt,
// reaches the shell once it runs.
import { expect, test } from "@playwright/test";
import { resetRoom, server, startSession, waitForTerminal } from "./server.ts";

test.afterAll(async () => {
  // Should the test have stopped half way, the server must not stay held.
  process.kill(server.pid, "SIGCONT");
  await resetRoom();
});

test("keys typed after Start, before the first prompt, reach the shell", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    // A first session loads the terminal's code into this browser (it is
    // fetched on demand); once it has ended, the page is back at the form.
    await startSession(page, "Margaret");
    await page.getByRole("button", { name: "End session" }).click();
    await expect(page.getByTestId("banner")).toContainText(/ended/i);
    await page.reload();
    await expect(page.getByLabel(/join code/i)).toHaveValue(server.joinCode);
    await expect(page.getByRole("button", { name: "Start" })).toBeEnabled();

    // A container can be ready in less time than a test takes to type a
    // line: the server is held (SIGSTOP) from Start until the keys are typed,
    // so they are sure to be typed while the session is still starting. The
    // page's messages wait in the socket, in order: the start, then the keys.
    process.kill(server.pid, "SIGSTOP");
    try {
      await page.getByRole("button", { name: "Start" }).click();
      // The terminal takes the keyboard at once; the student types without waiting.
      await expect(page.locator(".xterm-helper-textarea")).toBeFocused();
      await page.keyboard.type("echo typed-$((6*7))");
      await page.keyboard.press("Enter");
      await expect(page.getByTestId("status-bar")).toContainText("starting your container");
    } finally {
      process.kill(server.pid, "SIGCONT");
    }

    await expect(page.getByTestId("container-id")).toBeVisible({ timeout: 45_000 });
    await waitForTerminal(page, /^typed-42\s*$/m);
  } finally {
    await context.close();
  }
});
