// Click → visible prompt in Chromium: a student's page (the production build
// of the pages, as `npm start` serves it), join code and name typed, then the
// time from the click on Start to the frame that shows the shell's prompt in
// the terminal, measured inside the page (performance.now() at the click, and
// at the first animation frame after the prompt is in the terminal's rows).
// Two servers in the same run: a warm pool of 4 (each sample taken once the
// pool is full: a pool hit), and none (the baseline: built on Start).
//
// Chromium is Debian's, launched as the browser tests launch it
// (playwright.config.ts).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser } from "@playwright/test";
import playwrightConfig from "../playwright.config.ts";
import { newest } from "../tests/fixtures/newest.ts";
import { JOIN_CODE } from "../tests/fixtures/web-server.ts";
import { openClassroom, type Classroom } from "./classroom.ts";
import { logger, machineLoad, ms, percentile, sampleCount, table } from "./report.ts";

const log = logger("browser");
const ROOT = path.resolve(import.meta.dirname, "..");
const POOL = 4;

/** The production build (out/, a static export), made as `npm start` makes it when it is missing or older than what the pages are built from. */
function ensurePagesBuilt(): void {
  const built = newest(path.join(ROOT, "out", "index.html"));
  const sources = ["app", "public", "server/common/protocol.ts", "next.config.mjs", "package-lock.json"];
  if (built > 0 && sources.every((source) => newest(path.join(ROOT, source)) < built)) return;
  log("building the pages (next build)");
  execFileSync("npx", ["--no-install", "next", "build"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"], env: withoutDistSetting() });
}

/**
 * Run inside the page (as text: the bench's own compiler would add helpers
 * the page does not have): the click's time, then the first animation frame
 * after a row of the terminal ends in a prompt; resolves with the difference.
 */
const WATCH_FOR_PROMPT = `new Promise((resolve) => {
  let clickedAt = 0;
  document.addEventListener("click", () => (clickedAt = performance.now()), { capture: true, once: true });
  const isPrompt = (row) => /[#$>]\\s*$/.test((row.textContent || "").replace(/\\u00a0/g, " ").trimEnd());
  const observer = new MutationObserver(() => {
    if (!clickedAt || ![...document.querySelectorAll(".xterm-rows > div")].some(isPrompt)) return;
    observer.disconnect();
    requestAnimationFrame(() => resolve(performance.now() - clickedAt));
  });
  observer.observe(document.body, { subtree: true, childList: true, characterData: true });
})`;

/** The environment without PLAYGROUND_NEXT_DIST (the browser tests' build directory): this is the production build. */
function withoutDistSetting(): NodeJS.ProcessEnv {
  const { PLAYGROUND_NEXT_DIST: _testsBuild, ...env } = process.env;
  return env;
}

/** One student in a browser of their own: the page loaded, code and name typed; returns click → prompt shown, in ms. */
async function clickToPrompt(browser: Browser, url: string): Promise<number> {
  const context = await browser.newContext({ baseURL: url });
  try {
    const page = await context.newPage();
    await page.goto("/");
    await page.getByLabel(/join code/i).fill(JOIN_CODE);
    await page.getByLabel(/your name/i).fill("bench");
    const start = page.getByRole("button", { name: "Start" });
    await start.waitFor();
    const shown = page.evaluate<number>(WATCH_FOR_PROMPT);
    shown.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
    await start.click();
    const elapsed = await shown;
    // End the session, so that every sample finds the same room.
    await page.locator(".xterm-helper-textarea").focus();
    await page.keyboard.type("exit");
    await page.keyboard.press("Enter");
    await page.getByTestId("banner").waitFor({ timeout: 30_000 });
    return elapsed;
  } finally {
    await context.close();
  }
}

async function measure(browser: Browser, pool: number, samples: number): Promise<number[]> {
  const classroom: Classroom = await openClassroom({ PLAYGROUND_WEB_UI: "1", NODE_ENV: "production", PLAYGROUND_WARM_POOL: String(pool) });
  try {
    const times: number[] = [];
    for (let i = 0; i <= samples; i++) {
      if (pool > 0) await classroom.waitForPool(pool);
      const elapsed = await clickToPrompt(browser, classroom.server.url);
      if (i > 0) times.push(elapsed); // the first warms the server's pages up
    }
    log(`pool ${pool}: p50 ${ms(percentile(times, 50))}`);
    return times;
  } finally {
    await classroom.close();
  }
}

export async function benchBrowser(): Promise<void> {
  const samples = sampleCount(20);
  ensurePagesBuilt();
  const loadBefore = machineLoad();
  const browser = await chromium.launch(playwrightConfig.use?.launchOptions);
  let hit: number[];
  let cold: number[];
  try {
    hit = await measure(browser, POOL, samples);
    cold = await measure(browser, 0, samples);
  } finally {
    await browser.close();
  }
  const row = (label: string, values: number[]) => [label, ms(percentile(values, 50)), ms(percentile(values, 95)), ms(Math.max(...values))];
  process.stdout.write(
    `\nbrowser: click on Start → the prompt shown in the terminal, Chromium on loopback, ${samples} students each (goal: ≤ 200 ms)\n` +
      `machine: ${loadBefore} before, ${machineLoad()} after\n\n` +
      table(["", "p50", "p95", "max"], [row(`pool hit (warm pool of ${POOL})`, hit), row("cold: no pool (baseline)", cold)]) +
      "\n",
  );
}
