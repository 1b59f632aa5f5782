// Browser tests (e2e/): Debian's Chromium driving the real server on loopback,
// with real containers and a real registry. e2e/global-setup.ts starts the
// registry and the server once; the specs share them, one at a time (they
// watch each other's sessions, and the reset ends them all).
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "e2e",
  globalSetup: "./e2e/global-setup.ts",
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [["list"]],
  use: {
    // The server's address is known only once global setup has started it:
    // each spec sets baseURL from PLAYGROUND_E2E_URL (see e2e/server.ts).
    browserName: "chromium",
    viewport: { width: 1280, height: 760 },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      // Debian's Chromium; Playwright's own browser downloads are never used.
      executablePath: "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        // Without these Chromium keeps calling hosts it cannot reach here.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
