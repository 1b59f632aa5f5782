// A flood of output (`yes`) must neither grow the server's memory without
// bound nor make the terminal unresponsive. The server stops reading the pty
// while a page is too far behind in acknowledging what it drew: a page that
// reads slowly (behind a slow link), or not at all, holds the shell back
// instead of filling the server's memory. Likewise for input: typing into a
// program that reads none is refused once a little is waiting, not queued.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startSlowProxy, type SlowProxy } from "../fixtures/slow-proxy.ts";
import { startServer, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer;
let proxy: SlowProxy | undefined;

beforeAll(async () => {
  server = await startServer(inject("registry"));
  await server.waitForLog(/^default image ready$/);
});
afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;

describe("a flood of output", () => {
  it("keeps the server's memory bounded while a reader on a slow link falls behind, and Ctrl-C still works", async () => {
    const link = await startSlowProxy(server.url.replace("http://", ""), 32 * 1024);
    proxy = link;
    const s = await server.student({ via: link.address });
    await s.start();
    await sleep(500);
    const before = server.rssBytes();
    s.type("yes");
    let peak = before;
    for (let i = 0; i < 20; i++) {
      await sleep(500);
      peak = Math.max(peak, server.rssBytes());
    }
    // The shell wrote far more than this in 10 s (`yes` writes tens of MB a
    // second); the server held back, not buffered.
    expect(peak - before).toBeLessThan(100 * MB);
    expect(s.socket.connected).toBe(true);

    s.socket.emit("input", "\x03");
    link.setRate(Infinity);
    await sleep(500);
    const from = s.output().length;
    s.type("echo done-$((2*3))");
    await s.waitForOutput(/done-6/, 30_000, from);
    s.close();
  });

  it("pauses the shell for a page that acknowledges nothing, and resumes when it catches up", async () => {
    const s = await server.student({ ack: false });
    await s.start();
    s.type("yes");
    await sleep(3000);
    const received = s.output().length;
    // At most the high-water mark plus one batch is in flight unacknowledged.
    expect(received).toBeGreaterThan(64 * 1024);
    expect(received).toBeLessThan(256 * 1024);
    await sleep(1000);
    expect(s.output().length).toBe(received);

    // Acknowledging what it drew lets more come.
    let acked = 0;
    const ackAll = () => {
      const total = s.output().length;
      s.socket.emit("ack", total - acked);
      acked = total;
    };
    ackAll();
    await expect.poll(() => s.output().length, { timeout: 5000 }).toBeGreaterThan(received);

    s.socket.emit("input", "\x03");
    s.type("echo done-$((3*3))");
    const catchingUp = setInterval(ackAll, 50);
    try {
      await s.waitForOutput(/done-9/, 30_000, received);
    } finally {
      clearInterval(catchingUp);
    }
    s.close();
  });
});

describe("a flood of input", () => {
  it("is refused once a program leaves too much unread, with the server's memory bounded", async () => {
    const s = await server.student();
    await s.start();
    // Raw mode, so the kernel takes no more once its buffer is full; then a program that never reads.
    s.type("stty raw -echo; echo never-reading; sleep 1000");
    await s.waitForOutput(/never-reading/);
    const failed = s.next("failure", 30_000);
    const before = server.rssBytes();
    let peak = before;
    const chunk = "z".repeat(64 * 1024);
    // 64 MiB, at the rate the server allows (200 messages a second).
    for (let i = 0; i < 1024; i++) {
      s.socket.emit("input", chunk);
      if (i % 20 === 19) {
        await sleep(100);
        peak = Math.max(peak, server.rssBytes());
      }
    }
    await sleep(1000);
    peak = Math.max(peak, server.rssBytes());
    expect((await failed)[0]).toMatch(/not reading its input/);
    expect(peak - before).toBeLessThan(32 * MB);
    expect(s.socket.connected).toBe(true);
    s.close();
  });
});
