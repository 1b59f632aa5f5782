// What a student sees while their container is being made: the image's pull
// progress, then the shell; and when it cannot be made, the reason, in the
// terminal at once rather than a page that waits forever.
import { afterEach, describe, expect, inject, it } from "vitest";
import { startSlowProxy, type SlowProxy } from "../fixtures/slow-proxy.ts";
import { JOIN_CODE, startServer, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer | undefined;
let proxy: SlowProxy | undefined;
afterEach(async () => {
  await server?.stop();
  await proxy?.stop();
  server = proxy = undefined;
});

describe("starting a session", () => {
  it("shows the image's pull progress in the terminal, then the shell", async () => {
    // The mirror behind a slow link: pulling Alpine (3.5 MB) takes a few seconds.
    proxy = await startSlowProxy(inject("registry"), 1024 * 1024);
    server = await startServer(proxy.address);
    const s = await server.student();
    const info = await s.start();
    const progress = s.events.filter((e) => e.event === "progress").map((e) => String(e.args[0]));
    expect(progress.length).toBeGreaterThan(0);
    // Layer by layer, as docker pull shows it. (The server's own background
    // pull of the default image is already under way: the student's start
    // joins it and is told each layer's state, ending with "done".)
    for (const line of progress) expect(line).toMatch(/^[0-9a-f]{12}: (waiting|downloading( \d+%)?|extracting( \d+%)?|done|exists)$/);
    expect(progress.at(-1)).toMatch(/: (done|exists)$/);
    expect(progress.length).toBeLessThan(100); // told a few times a second, not per chunk
    expect(info.image).toBe("alpine:latest");
    s.close();
  });

  it("tells the student at once why their container could not be made", async () => {
    server = await startServer(inject("registry"), { PLAYGROUND_IMAGE: "no-such-image-here:latest" });
    const s = await server.student();
    s.socket.emit("start", { code: JOIN_CODE });
    const [message] = await s.next("failure", 20_000);
    expect(message).toMatch(/^could not start your container: .*no-such-image-here/);
    expect(message).not.toMatch(/\n/);
    // The place is given back: the list shows it ended, with the reason.
    const rows = await server.rows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: "ended" });
    expect(rows[0].endReason).toMatch(/^could not start/);
    s.close();
  });
});
