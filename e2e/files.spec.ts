// Files in Chromium: a student uploads a file with the button into the
// directory their shell is in and finds it there byte for byte, then
// downloads a file of their container by its path and gets the same bytes.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import { expect, test } from "@playwright/test";
import { run, server, startSession, waitForTerminal } from "./server.ts";

test("a student uploads a file with the button and downloads one by its path", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: server.url, acceptDownloads: true });
  const page = await context.newPage();
  await startSession(page, "Files");
  await run(page, "mkdir -p /root/up && cd /root/up");

  const data = randomBytes(300 * 1024);
  for (let i = 0; i < 256; i++) data[i] = i;
  const sum = createHash("sha256").update(data).digest("hex");
  await page.getByTestId("upload-input").setInputFiles({ name: "upload me.bin", mimeType: "application/octet-stream", buffer: data });
  await expect(page.getByTestId("transfer-status")).toHaveText(/Uploaded to \/root\/up\/upload me\.bin/);
  await run(page, "sha256sum 'upload me.bin'");
  await waitForTerminal(page, new RegExp(`^${sum}  upload me\\.bin\\s*$`, "m"));

  await run(page, "printf 'made in the container\\n' > /tmp/made.txt");
  await page.getByLabel("File to download").fill("/tmp/made.txt");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download" }).click()]);
  expect(download.suggestedFilename()).toBe("made.txt");
  expect(fs.readFileSync((await download.path())!, "utf8")).toBe("made in the container\n");
  await expect(page.getByTestId("transfer-status")).toHaveText(/Downloaded made\.txt/);
  await context.close();
});
