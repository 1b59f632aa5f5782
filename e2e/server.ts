// What the specs share: where the server is (set by e2e/global-setup.ts) and
// how to drive and read a page's terminal.
//
// The terminal is read through `window.__term`, the xterm.js Terminal the
// pages expose in the tests' own build (app/components/terminal-view.tsx,
// e2e/global-setup.ts): its buffer holds the scrollback and the screen as
// text, which the DOM rows do not.
import { expect, type Page } from "@playwright/test";
import type { Terminal } from "@xterm/xterm";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with playwright.config.ts (its global setup starts the server)`);
  return value;
}

export const server = {
  get url() {
    return required("PLAYGROUND_E2E_URL");
  },
  get instructorToken() {
    return required("PLAYGROUND_E2E_INSTRUCTOR_TOKEN");
  },
  get adminToken() {
    return required("PLAYGROUND_E2E_ADMIN_TOKEN");
  },
  get joinCode() {
    return required("PLAYGROUND_E2E_JOIN_CODE");
  },
  get dataDir() {
    return required("PLAYGROUND_E2E_DATA_DIR");
  },
  /** The server's process: a spec may hold it (SIGSTOP) for a moment, and must let it go on (SIGCONT). */
  get pid() {
    return Number(required("PLAYGROUND_E2E_SERVER_PID"));
  },
  /** The test registry (host:port) the server pulls from, for a spec that starts a server of its own. */
  get registry() {
    return required("PLAYGROUND_E2E_REGISTRY");
  },
};

/** The admin reset of a server (this one unless told): ends every session and removes every container. */
export async function resetRoom(url = server.url, adminToken = server.adminToken): Promise<void> {
  const res = await fetch(`${url}/api/admin/reset`, { method: "POST", headers: { authorization: `Bearer ${adminToken}` } });
  if (!res.ok) throw new Error(`the admin reset answered ${res.status}: ${await res.text()}`);
}

/** Every line of the page's terminal (scrollback and screen), as plain text. */
export async function terminalText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const term = (window as unknown as { __term?: Terminal }).__term;
    if (!term) return "";
    const buffer = term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < buffer.length; y++) lines.push(buffer.getLine(y)?.translateToString(true) ?? "");
    return lines.join("\n");
  });
}

/** Waits until the terminal's text matches `pattern`; returns the match. */
export async function waitForTerminal(page: Page, pattern: RegExp, timeout = 20_000): Promise<RegExpMatchArray> {
  let match: RegExpMatchArray | null = null;
  await expect
    .poll(
      async () => {
        match = (await terminalText(page)).match(pattern);
        return match !== null;
      },
      { timeout, message: `terminal output matching ${pattern}` },
    )
    .toBe(true);
  return match!;
}

/** Types a command line into the page's terminal, as a student would, and presses Enter. */
export async function typeLine(page: Page, line: string): Promise<void> {
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

/**
 * Runs a command whose output ends with a marker the typed line cannot
 * contain (the shell computes it), and waits for that marker: the command has
 * then finished and its output is in the terminal.
 */
export async function run(page: Page, command: string, timeout?: number): Promise<string> {
  const tag = `done${crypto.randomUUID().slice(0, 8)}`;
  await typeLine(page, `${command}; echo "${tag}-$((6*7))"`);
  await waitForTerminal(page, new RegExp(`${tag}-42`), timeout);
  return terminalText(page);
}

/** Opens the student page, starts a session under `name` (with the room's join code) and waits for a working shell. */
export async function startSession(page: Page, name: string, joinCode = server.joinCode): Promise<void> {
  await page.goto("/");
  const code = page.getByLabel(/join code/i);
  await expect(code).toBeVisible();
  await code.fill(joinCode);
  await page.getByLabel(/your name/i).fill(name);
  await page.getByRole("button", { name: "Start" }).click();
  // Running (the status line shows the container) or refused (a banner says why).
  const running = page.getByTestId("container-id");
  const banner = page.getByTestId("banner");
  await expect(running.or(banner).first()).toBeVisible({ timeout: 45_000 });
  if (await banner.isVisible()) throw new Error(`the session did not start: ${await banner.textContent()}`);
  await run(page, "true", 30_000);
}

/**
 * Where `text` is drawn: the viewport coordinates of its middle, on the last
 * line of the terminal's buffer that holds it (that line must be on screen).
 * The cell size is the screen element's size over the terminal's columns and
 * rows, as xterm.js lays its cells out.
 */
async function terminalTextPosition(page: Page, text: string): Promise<{ x: number; y: number }> {
  const found = await page.evaluate((text) => {
    const term = (window as unknown as { __term?: Terminal }).__term;
    const screen = term?.element?.querySelector(".xterm-screen");
    if (!term || !screen) return "the page has no terminal";
    const buffer = term.buffer.active;
    for (let y = buffer.length - 1; y >= 0; y--) {
      const column = (buffer.getLine(y)?.translateToString(true) ?? "").lastIndexOf(text);
      if (column < 0) continue;
      const row = y - buffer.viewportY;
      if (row < 0 || row >= term.rows) return `"${text}" is not on screen (buffer line ${y}, screen from ${buffer.viewportY})`;
      const box = screen.getBoundingClientRect();
      const cell = { width: box.width / term.cols, height: box.height / term.rows };
      return { x: box.left + (column + text.length / 2) * cell.width, y: box.top + (row + 0.5) * cell.height };
    }
    return `"${text}" is not in the terminal`;
  }, text);
  if (typeof found === "string") throw new Error(found);
  return found;
}

/**
 * Clicks a link in the terminal with the mouse, as a person does: xterm.js
 * finds the link under the pointer as it moves (and shows the pointer cursor
 * once it has), and opens it on a click only after that.
 */
export async function clickTerminalLink(page: Page, text: string): Promise<void> {
  const { x, y } = await terminalTextPosition(page, text);
  await page.mouse.move(x, y);
  await expect(page.locator(".xterm-screen"), `xterm.js sees a link under "${text}"`).toHaveClass(/\bxterm-cursor-pointer\b/);
  await page.mouse.click(x, y);
}
