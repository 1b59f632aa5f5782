// A classroom for the benchmarks that start sessions: the real server
// (tests/fixtures/web-server.ts: `node bin/playground.mjs serve`, API and
// socket.io, as `npm start` runs it) with the test registry as its mirror and
// Alpine as the room's image, an instructor's socket that follows the warm
// pool, and the one measurement these benchmarks share: from opening a
// student's socket (and asking to start, with the room's join code, as the
// page does) to the first byte of the shell's prompt.
import { io, type Socket } from "socket.io-client";
import type { RoomInfo } from "../server/common/protocol.ts";
import { pushTestImages } from "../tests/fixtures/images.ts";
import { startRegistry, type TestRegistry } from "../tests/fixtures/registry.ts";
import { JOIN_CODE, newCookieSecret, startServer, type TestServer } from "../tests/fixtures/web-server.ts";

export interface Classroom {
  server: TestServer;
  /** Containers waiting in the warm pool now, as the instructor's page shows it. */
  poolReady(): number;
  /** Until the pool holds `count` containers. */
  waitForPool(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A session started by `startSession`: its socket, and how to end it (the shell exits; resolves once the server says it ended). */
export interface BenchSession {
  socket: Socket;
  /** Milliseconds from opening the socket to the first output byte. */
  ms: number;
  end(): Promise<void>;
}

export async function openClassroom(settings: Record<string, string>): Promise<Classroom> {
  const registry: TestRegistry = await startRegistry();
  let server: TestServer | undefined;
  try {
    await (await pushTestImages(registry.address, { only: ["alpine"] })).cleanup();
    // A whole class starts from one address here: no rate limit may refuse it.
    server = await startServer(registry.address, { PLAYGROUND_START_BURST: "100000", ...settings });
    await server.waitForLog(/^default image ready$/);
    const instructor = await server.instructor();
    let room: RoomInfo | undefined;
    const changes = new Set<() => void>();
    instructor.on("room", (info: RoomInfo) => {
      room = info;
      for (const notify of changes) notify();
    });
    const running = server;
    return {
      server: running,
      poolReady: () => room?.pool.ready ?? 0,
      waitForPool: (count, timeoutMs = 120_000) =>
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if ((room?.pool.ready ?? 0) < count) return;
            changes.delete(check);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            changes.delete(check);
            reject(new Error(`the warm pool never held ${count} containers (it has ${room?.pool.ready ?? 0})`));
          }, timeoutMs);
          changes.add(check);
          check();
        }),
      async close() {
        instructor.close();
        await running.stop();
        await registry.stop();
      },
    };
  } catch (error) {
    await server?.stop().catch(() => {});
    await registry.stop();
    throw error;
  }
}

/** A new browser opens a socket and asks for a session at once; resolves at the first byte of output (the prompt). */
export async function startSession(url: string, timeoutMs = 120_000): Promise<BenchSession> {
  const opened = performance.now();
  const socket = io(url, { transports: ["websocket"], extraHeaders: { cookie: `pg_session=${newCookieSecret()}` }, reconnection: false, forceNew: true });
  const ended = new Promise<void>((resolve) => {
    socket.once("ended", () => resolve());
    socket.once("disconnect", () => resolve());
  });
  try {
    const ms = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no prompt after ${timeoutMs} ms`)), timeoutMs);
      socket.once("connect", () => socket.emit("start", { code: JOIN_CODE }));
      socket.once("output", () => {
        clearTimeout(timer);
        resolve(performance.now() - opened);
      });
      socket.once("failure", (message: string) => reject(new Error(`start refused: ${message}`)));
      socket.once("connect_error", reject);
    });
    // Acknowledge output as the page does, so flow control never pauses the shell.
    socket.on("output", (data: string) => socket.emit("ack", data.length));
    return {
      socket,
      ms,
      async end() {
        socket.emit("input", "exit\r");
        await ended;
        socket.close();
      },
    };
  } catch (error) {
    socket.close();
    throw error;
  }
}
