// Who may start a shell, and what a stranger can do to the room. Real server,
// real containers; every client is on loopback.
//
//   - the join code: no code, a wrong code, and fifty anonymous sockets get
//     no shell; the right one does; guessing is slowed per address;
//   - one browser, one session: a second tab attaches to the same shell;
//   - session starts are rate-limited per client address (burst, then a
//     rate), by the forwarded address only behind a trusted proxy;
//   - a request naming another host is refused (DNS rebinding);
//   - keystrokes typed before the first prompt reach the shell (typeahead);
//   - a `yes` left running in a closed tab costs the server no CPU;
//   - over TLS, cookies are Secure and HSTS is sent;
//   - the instructor and admin tokens may not be the same.
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { io } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_TOKEN, INSTRUCTOR_TOKEN, JOIN_CODE, newCookieSecret, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: TestServer;
const open: Student[] = [];

beforeAll(async () => {
  server = await startServer(inject("registry"), { PLAYGROUND_START_BURST: "8", PLAYGROUND_START_PER_MINUTE: "0" });
  await server.waitForLog(/^default image ready$/);
});
afterAll(async () => {
  for (const s of open) s.close();
  await server?.stop();
});

async function student(options: Parameters<TestServer["student"]>[0] = {}): Promise<Student> {
  const s = await server.student(options);
  open.push(s);
  return s;
}

async function reset(): Promise<void> {
  await server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
}

describe("the join code", () => {
  it("keeps out a browser without it, with a wrong one, and fifty anonymous sockets; lets in the right one", async () => {
    const s = await student();
    expect(await s.next("joinCode", 5000, true)).toEqual(["needed"]);
    s.socket.emit("start", {});
    expect(await s.next("failure")).toEqual(["this room needs a join code: ask your instructor"]);
    s.socket.emit("start", { code: "WRONG1" });
    expect(await s.next("joinCode")).toEqual(["wrong"]);
    const crowd = await Promise.all(Array.from({ length: 50 }, () => student()));
    for (const c of crowd) c.socket.emit("start", { name: "intruder" });
    await Promise.all(crowd.map((c) => c.next("failure")));
    expect((await server.rows()).filter((r) => r.state !== "ended")).toEqual([]);
    for (const c of crowd) c.close();
    // Case and spaces do not matter to a student reading it off a projector.
    const info = await s.start("ada", { code: ` ${JOIN_CODE.toLowerCase()} ` });
    expect(info.studentName).toBe("ada");
    await reset();
  });
});

describe("one browser", () => {
  it("holds at most one session: a second tab attaches to the same shell", async () => {
    const first = await student();
    const info = await first.start("tabs");
    const second = await student({ cookie: first.cookie });
    const [again] = (await second.next("session", 5000, true)) as [{ id: string }];
    expect(again.id).toBe(info.id);
    second.type("echo from-tab-two-$((2+2))");
    await first.waitForOutput(/from-tab-two-4/);
    expect((await server.rows()).filter((r) => r.state !== "ended")).toHaveLength(1);
    await reset();
  });
});

describe("a stranger's requests", () => {
  it("are refused when they name another host (DNS rebinding), page and socket alike", async () => {
    const port = new URL(server.url).port;
    const page = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: evil.example", `http://127.0.0.1:${port}/api/health`]);
    expect(page.stdout).toBe("421");
    const socket = io(server.url, { transports: ["websocket"], extraHeaders: { host: `evil.example:${port}` }, reconnection: false, forceNew: true });
    const outcome = await new Promise<string>((resolve) => {
      socket.once("connect", () => resolve("connected"));
      socket.once("connect_error", () => resolve("refused"));
    });
    socket.close();
    expect(outcome).toBe("refused");
    const ours = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}/api/health`]);
    expect(ours.stdout).toBe("200");
  });
});

describe("typing", () => {
  it("keeps keystrokes typed before the first prompt, and the shell runs them", async () => {
    const s = await student();
    s.socket.emit("start", { code: JOIN_CODE, name: "fast-typist" });
    s.socket.emit("input", "echo typed-ahead-$((40+2))\r");
    await s.waitForOutput(/typed-ahead-42/, 30_000);
    await reset();
  });

  it("leaves the server's CPU idle while a `yes` runs in a tab that was closed", async () => {
    const s = await student();
    await s.start("flood");
    s.type("yes");
    await s.waitForOutput(/y\r\ny\r\ny/);
    s.close();
    // The relay pauses the shell once a screenful has gone unseen; from then on the server does nothing.
    await sleep(1500);
    const cpu = async () => {
      const stat = await fs.readFile(`/proc/${server.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
    };
    const before = await cpu();
    await sleep(5000);
    // Busy relaying, it would use most of a core (several seconds of CPU); paused, almost none.
    expect((await cpu()) - before).toBeLessThan(0.5);
    await reset();
  });
});

describe("rate limits per address", () => {
  it("refuse starts past the burst from one address, and count a trusted proxy's forwarded address instead", async () => {
    // A server of its own: a burst of two, nothing refilled, behind a "proxy" (the test sets X-Forwarded-For).
    const limited = await startServer(inject("registry"), { PLAYGROUND_START_BURST: "2", PLAYGROUND_START_PER_MINUTE: "0", PLAYGROUND_TRUST_PROXY: "1" });
    try {
      await limited.waitForLog(/^default image ready$/);
      const from = async (address: string) => {
        const socket = io(limited.url, { transports: ["websocket"], extraHeaders: { cookie: `pg_session=${newCookieSecret()}`, "x-forwarded-for": address }, reconnection: false, forceNew: true });
        await new Promise<void>((r) => socket.once("connect", () => r()));
        socket.emit("start", { code: JOIN_CODE });
        const answer = await new Promise<string>((resolve) => {
          socket.on("session", (info) => info && resolve("started"));
          socket.on("failure", (message: string) => resolve(message));
        });
        socket.close();
        return answer;
      };
      expect(await from("198.18.0.1")).toBe("started");
      expect(await from("198.18.0.1")).toBe("started");
      expect(await from("198.18.0.1")).toMatch(/too many sessions were started from your network/);
      expect(await from("198.18.0.2")).toBe("started"); // another school
      await limited.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    } finally {
      await limited.stop();
    }
  });
});

describe("the server's own settings", () => {
  it("refuses to start when the instructor and admin tokens are the same", async () => {
    await expect(startServer(inject("registry"), { PLAYGROUND_ADMIN_TOKEN: INSTRUCTOR_TOKEN })).rejects.toThrow(/instructor and admin tokens are the same/);
  });

  it("serves HTTPS with TLS settings: HSTS on every answer, and a Secure session cookie", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "pg-tls-"));
    const cert = path.join(dir, "cert.pem");
    const key = path.join(dir, "key.pem");
    await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert]);
    const tls = await startServer(inject("registry"), { PLAYGROUND_TLS_CERT: cert, PLAYGROUND_TLS_KEY: key });
    try {
      const ca = await fs.readFile(cert);
      const get = (pathname: string) =>
        new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
          https.get(`${tls.url.replace("http:", "https:")}${pathname}`, { ca }, (res) => {
            res.resume();
            resolve({ status: res.statusCode!, headers: res.headers });
          }).on("error", reject);
        });
      const health = await get("/api/health");
      expect(health.status).toBe(200);
      expect(health.headers["strict-transport-security"]).toMatch(/max-age=\d+/);
      const handshake = await get("/socket.io/?EIO=4&transport=polling");
      expect(String(handshake.headers["set-cookie"])).toMatch(/pg_session=[^;]+;.*HttpOnly.*; Secure/);
    } finally {
      await tls.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("guessing the join code", () => {
  // Last in the file: the address it locks out, loopback, is every other test's too.
  it("slows down guessing: after ten wrong codes from one address, even the right one must wait", async () => {
    // Each guess from a fresh socket: what is limited here is the address, not the socket.
    const guess = async (code: string) => {
      const s = await server.student();
      open.push(s);
      s.socket.emit("start", { code });
      const [answer] = await s.next("failure");
      s.close();
      return String(answer);
    };
    const answers: string[] = [];
    while (answers.length < 12 && !/too many wrong join codes/.test(answers.at(-1) ?? "")) answers.push(await guess(`GUESS${answers.length}`));
    expect(answers.at(-1)).toMatch(/too many wrong join codes/);
    expect(answers.length).toBeLessThanOrEqual(11); // a burst of ten wrong codes at most
    expect(await guess(JOIN_CODE)).toMatch(/too many wrong join codes/);
  });
});
