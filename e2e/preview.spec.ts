// Port previews in Chromium: a student uploads a web server and a WebSocket
// echo server into their container and starts them (Alpine's own busybox has
// no httpd: the host's static busybox is sent in, as a student might send a
// program of their own); the page lists the ports; the link opens the page
// the container serves, on the preview origin, where the main origin's
// storage is out of reach and a WebSocket works; another browser is refused;
// the instructor opens the same preview from the instructor page.
import fs from "node:fs/promises";
import { expect, test, type Browser, type BrowserContext, type Page } from "@playwright/test";
import { buildStaticTools } from "../tests/fixtures/static-tools.ts";
import { run, server, startSession } from "./server.ts";

test.describe.configure({ mode: "serial" });

const contexts: BrowserContext[] = [];
let student: Page;
let preview: Page;
let sessionId: string;

async function newContext(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL: server.url });
  contexts.push(context);
  return context;
}

test.afterAll(async () => {
  for (const context of contexts) await context.close();
});

test("the student's page lists the ports their container listens on", async ({ browser }) => {
  student = await (await newContext(browser)).newPage();
  await startSession(student, "Preview");
  await run(student, `mkdir -p /root/www && cd /root/www && echo '<h1>hello from the container</h1><a id="next" href="/next.html">next</a>' > index.html && echo next-page > next.html`);
  const tools = await buildStaticTools();
  try {
    await student.getByTestId("upload-input").setInputFiles([
      { name: "busybox", mimeType: "application/octet-stream", buffer: await fs.readFile("/bin/busybox") },
      { name: "ws-echo", mimeType: "application/octet-stream", buffer: await fs.readFile(tools.paths["ws-echo"]) },
    ]);
  } finally {
    await fs.rm(tools.dir, { recursive: true, force: true });
  }
  await expect(student.getByTestId("transfer-status")).toHaveText(/Uploaded to \/root\/www\/ws-echo/, { timeout: 30_000 });
  await run(student, "chmod +x busybox ws-echo && ./busybox httpd -p 8080 -h /root/www && (./ws-echo 8081 >/dev/null 2>&1 &)");
  const ports = student.getByTestId("ports");
  await expect(ports.getByRole("link", { name: "8080" })).toBeVisible();
  await expect(ports.getByRole("link", { name: "8081" })).toBeVisible();
  sessionId = new URL(await ports.getByRole("link", { name: "8080" }).evaluate((a) => (a as HTMLAnchorElement).href)).pathname.split("/")[2];
});

test("the link opens what the container serves, on the preview origin, out of reach of the main origin's storage", async () => {
  const [page] = await Promise.all([student.context().waitForEvent("page"), student.getByTestId("ports").getByRole("link", { name: "8080" }).click()]);
  preview = page;
  await expect(preview.locator("h1")).toHaveText("hello from the container");
  const url = new URL(preview.url());
  const main = new URL(server.url);
  expect(url.hostname).toBe(main.hostname);
  expect(url.port).not.toBe(main.port);
  expect(url.pathname).toBe(`/preview/${sessionId}/8080/`);
  expect(url.search).toBe("");
  // Absolute links stay inside the preview.
  await expect(preview.locator("#next")).toHaveAttribute("href", `/preview/${sessionId}/8080/next.html`);
  await preview.locator("#next").click();
  await expect(preview.locator("body")).toHaveText("next-page");
  // The main page keeps the join code in its storage; the preview's is another origin's, and sees nothing of it.
  expect(await student.evaluate(() => localStorage.getItem("playground.joinCode"))).toBe(server.joinCode);
  expect(await preview.evaluate(() => localStorage.getItem("playground.joinCode"))).toBeNull();
  // Neither cookie is readable by the page's scripts.
  expect(await preview.evaluate(() => document.cookie)).not.toMatch(/pg_/);
});

test("a WebSocket reaches the container's server through the preview", async () => {
  const reply = await preview.evaluate(
    (path) =>
      new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}${path}`);
        ws.onopen = () => ws.send("hi");
        ws.onmessage = (event) => {
          resolve(String(event.data));
          ws.close();
        };
        ws.onerror = () => reject(new Error("the WebSocket failed"));
      }),
    `/preview/${sessionId}/8081/`,
  );
  expect(reply).toBe("echo: hi");
});

test("another browser is refused, on the preview origin and on the main one", async ({ browser }) => {
  const stranger = await (await newContext(browser)).newPage();
  const direct = await stranger.goto(new URL(`/preview/${sessionId}/8080/`, preview.url()).toString());
  expect(direct?.status()).toBe(403);
  await expect(stranger.locator("body")).not.toContainText("hello from the container");
  const entry = await stranger.goto(`/preview/${sessionId}/8080/`);
  expect(entry?.status()).toBe(403);
});

test("the instructor opens the same preview from the instructor page", async ({ browser }) => {
  const context = await newContext(browser);
  const instructor = await context.newPage();
  await instructor.goto(`/instructor?token=${encodeURIComponent(server.instructorToken)}`);
  const button = instructor.locator(`tr[data-session-id="${sessionId}"] .preview-ports`).getByRole("button", { name: "8080" });
  await expect(button).toBeVisible();
  const [page] = await Promise.all([context.waitForEvent("page"), button.click()]);
  await expect(page.locator("h1")).toHaveText("hello from the container");
  expect(new URL(page.url()).pathname).toBe(`/preview/${sessionId}/8080/`);
  // The tab cannot reach back to the instructor's page.
  expect(await page.evaluate(() => window.opener)).toBeNull();
});
