// Sessions end on their own when nobody uses them, and the student is told
// why: no page attached for the grace period, no input for the idle period,
// or the lifetime reached. Short limits are set through the PLAYGROUND_*
// settings, as an operator would; the container goes with the session.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startServer, type TestServer } from "../fixtures/web-server.ts";

describe("the reaper", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(inject("registry"), {
      PLAYGROUND_GRACE_SECONDS: "3",
      PLAYGROUND_IDLE_SECONDS: "5",
      PLAYGROUND_LIFETIME_SECONDS: "3600",
    });
    await server.waitForLog(/^default image ready$/);
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function containerIsGone(id: string): Promise<boolean> {
    const ps = await server.sandbox.run(["ps", "-a"]);
    return !ps.stdout.includes(id);
  }

  it("ends a session no page has been attached to for the grace period, removes its container, and tells the browser when it comes back", async () => {
    const s = await server.student();
    const info = await s.start();
    s.close();
    await expect
      .poll(async () => (await server.rows()).find((r) => r.id === info.id), { timeout: 15_000, interval: 250 })
      .toMatchObject({ state: "ended", endReason: "no browser was attached for 3 seconds" });
    await expect.poll(() => containerIsGone(info.containerId), { timeout: 10_000 }).toBe(true);

    // The same browser returns: no session, and the reason, once.
    const back = await server.student({ cookie: s.cookie });
    expect(await back.next("session", 5000, true)).toEqual([null]);
    expect(await back.next("ended", 5000, true)).toEqual(["no browser was attached for 3 seconds"]);
    back.close();
  });

  it("keeps a session whose page reconnects within the grace period", async () => {
    const s = await server.student();
    const info = await s.start();
    s.close();
    // Away for a third of the grace period (the reaper looks every 0.75 s): a reconnect that is slow on a busy machine still comes in time.
    await new Promise((r) => setTimeout(r, 1000));
    const back = await server.student({ cookie: s.cookie });
    expect((await back.next("session", 5000, true))[0]).toMatchObject({ id: info.id });
    // Typing keeps it from the idle limit; it outlives the grace period now that a page is attached.
    for (let i = 0; i < 4; i++) {
      back.type(`echo still-here-${i}`);
      await back.waitForOutput(new RegExp(`still-here-${i}\\r?\\n`));
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect((await server.rows()).find((r) => r.id === info.id)?.state).toBe("running");
    back.close();
  });

  it("ends an attached session after the idle period without input, telling the page why", async () => {
    const s = await server.student();
    const info = await s.start();
    const [reason] = await s.next("ended", 20_000);
    expect(reason).toBe("nothing was typed for 5 seconds");
    // Not a moment early, by the server's own record: it ended at least the idle period after the last input (none: the start).
    await expect.poll(async () => (await server.rows()).find((r) => r.id === info.id)?.state, { timeout: 10_000 }).toBe("ended");
    const row = (await server.rows()).find((r) => r.id === info.id)!;
    expect(Date.parse(row.endedAt!) - Date.parse(row.lastActivityAt)).toBeGreaterThanOrEqual(5000);
    await expect.poll(() => containerIsGone(info.containerId), { timeout: 10_000 }).toBe(true);
    s.close();
  });
});

describe("the lifetime limit", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(inject("registry"), { PLAYGROUND_LIFETIME_SECONDS: "3" });
    await server.waitForLog(/^default image ready$/);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("ends a busy session at the end of its lifetime", async () => {
    const s = await server.student();
    const info = await s.start();
    expect(Date.parse(info.expiresAt) - Date.parse(info.startedAt)).toBe(3000);
    const typing = setInterval(() => s.type("true"), 300);
    try {
      const [reason] = await s.next("ended", 15_000);
      expect(reason).toBe("the session reached its time limit of 3 seconds");
    } finally {
      clearInterval(typing);
      s.close();
    }
  });
});
