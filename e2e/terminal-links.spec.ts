// Links in a terminal are what a student's container printed, so the page
// decides what a click on one may do (app/lib/links.ts): only http, https and
// mailto open, in a new page that cannot reach back (no `window.opener`); a
// `javascript:` link does nothing. Checked with real mouse clicks on the
// student's page and on the instructor's view of that student's terminal,
// where a script run by a click could read the instructor's token.
//
// The links point at a web server of this spec's own, on loopback: the browser
// opens them, the container never reaches it.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect, test, type BrowserContext, type Dialog, type Page } from "@playwright/test";
import { clickTerminalLink, resetRoom, run, server, startSession, waitForTerminal } from "./server.ts";

test.describe.configure({ mode: "serial" });

let target: http.Server;
let targetUrl: string;
let student: Page;
let instructor: Page;
const contexts: BrowserContext[] = [];
/** Every dialog (alert, confirm…) any page of these browsers showed. */
const dialogs: string[] = [];

test.beforeAll(async ({ browser }) => {
  target = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><title>link target</title><p>reached ${req.url}</p>`);
  });
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;

  const open = async () => {
    const context = await browser.newContext({ baseURL: server.url });
    contexts.push(context);
    context.on("dialog", (dialog: Dialog) => {
      dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.dismiss();
    });
    return context.newPage();
  };
  student = await open();
  await startSession(student, "Lin");
  instructor = await open();
  await instructor.goto(`/instructor?token=${server.instructorToken}`);
  await instructor.getByTestId("live-sessions").locator("tr[data-session-id]", { hasText: "Lin" }).click();
  await expect(instructor.getByTestId("viewer")).toContainText("Lin");
});

test.afterAll(async () => {
  for (const context of contexts) await context.close();
  await new Promise((resolve) => target?.close(resolve));
  await resetRoom();
});

let printed = 0;
/**
 * Prints an OSC 8 hyperlink to `uri` in the student's shell and returns the
 * text it shows: made by the shell, so the typed command line does not hold it.
 */
async function printHyperlink(uri: string): Promise<string> {
  const n = ++printed;
  await run(student, `printf '\\033]8;;%s\\033\\\\%s\\033]8;;\\033\\\\\\n' '${uri}' "link$((${n}*1000+42))"`);
  return `link${n * 1000 + 42}`;
}

/** Prints a plain URL on a line of its own (shell-made, as above) and returns it. */
async function printUrl(): Promise<string> {
  const n = ++printed;
  await run(student, `echo "${targetUrl}/plain-$((${n}*1000+42))"`);
  return `${targetUrl}/plain-${n * 1000 + 42}`;
}

/** Clicks a link on `page` and returns the page it opened, loaded. */
async function openByClick(page: Page, text: string): Promise<Page> {
  const opened = page.context().waitForEvent("page");
  await clickTerminalLink(page, text);
  const tab = await opened;
  await tab.waitForLoadState();
  return tab;
}

for (const viewer of ["student", "instructor"] as const) {
  const pageOf = () => (viewer === "student" ? student : instructor);

  test(`${viewer} page: a javascript: hyperlink is inert: a click opens nothing and runs nothing`, async () => {
    const page = pageOf();
    const before = page.url();
    const evil = await printHyperlink("javascript:alert(document.domain)");
    const control = await printHyperlink(`${targetUrl}/after-the-javascript-link`);
    await waitForTerminal(page, new RegExp(`^${control}$`, "m"));

    const opened: string[] = [];
    const record = (tab: Page) => opened.push(tab.url());
    page.context().on("page", record);
    try {
      await clickTerminalLink(page, evil);
      // A page or a dialog from that click would come before anything the next
      // click does: the http link's page, opened next, is then the first one.
      const next = await openByClick(page, control);
      expect(next.url(), "the first page the two clicks opened").toBe(`${targetUrl}/after-the-javascript-link`);
      await next.close();
    } finally {
      page.context().off("page", record);
    }
    expect(opened, "pages opened by the two clicks").toHaveLength(1);
    expect(dialogs).toEqual([]);
    expect(page.url()).toBe(before);
    // The page still works: the student's shell answers, the instructor still watches it.
    await run(student, 'echo "still-here-$((6*7))"');
    await waitForTerminal(page, /^still-here-42\s*$/m);
  });

  test(`${viewer} page: http links, plain and hyperlinked, open a new page that has no opener`, async () => {
    const page = pageOf();
    const url = await printUrl();
    const hyperlink = await printHyperlink(`${targetUrl}/hyperlinked-${viewer}`);
    await waitForTerminal(page, new RegExp(`^${hyperlink}$`, "m"));

    for (const [text, address] of [
      [url, url],
      [hyperlink, `${targetUrl}/hyperlinked-${viewer}`],
    ]) {
      const tab = await openByClick(page, text);
      expect(tab.url()).toBe(address);
      await expect(tab).toHaveTitle("link target");
      // noopener: the opened page cannot reach the page with the terminal.
      expect(await tab.evaluate(() => window.opener), `window.opener of the page "${text}" opened`).toBeNull();
      await tab.close();
    }
    expect(dialogs).toEqual([]);
  });
}
