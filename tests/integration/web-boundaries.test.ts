// The browser is untrusted. Malformed, unknown, oversized and flooding
// messages get a `failure` on that socket only (or, past the transport's
// size limit, that one connection is closed): the server stays up and other
// students' sessions carry on undisturbed. The HTTP API refuses bad tokens
// and bad bodies without doing anything.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_TOKEN, INSTRUCTOR_TOKEN, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

const run = promisify(execFile);

let server: TestServer;
/** A student minding their own business while another misbehaves. */
let bystander: Student;

beforeAll(async () => {
  server = await startServer(inject("registry"));
  await server.waitForLog(/^default image ready$/);
  bystander = await server.student();
  await bystander.start();
});
afterAll(async () => {
  bystander?.close();
  await server?.stop();
});

/** The bystander's shell still answers, promptly. */
async function bystanderUndisturbed(tag: string): Promise<void> {
  const from = bystander.output().length;
  bystander.type(`echo ok-${tag}-$((1+1))`);
  await bystander.waitForOutput(new RegExp(`ok-${tag}-2`), 10_000, from);
}

describe("socket.io messages", () => {
  it("answers malformed and unknown messages with a failure to that socket only", async () => {
    const s = await server.student();
    await s.start();
    const bad: [string, unknown][] = [
      ["resize", { cols: "wide", rows: 24 }],
      ["resize", null],
      ["input", 42],
      ["input", { text: "ls" }],
      ["ack", -5],
      ["ack", "lots"],
      ["start", { name: "<script>alert(1)</script>" }],
      ["start", "not an object"],
      ["rm -rf", "/"],
    ];
    const failuresBefore = bystander.events.filter((e) => e.event === "failure").length;
    for (const [event, value] of bad) {
      const failed = s.next("failure", 5000);
      s.socket.emit(event, value);
      const [message] = await failed;
      expect(typeof message).toBe("string");
      // Refusals are rate-limited to one a second per socket.
      await new Promise((r) => setTimeout(r, 1050));
    }
    expect(s.socket.connected).toBe(true);
    // The session itself is fine, and its terminal kept a sane size.
    s.type("stty size");
    await s.waitForOutput(/\b24 80\b/);
    // An absurd size is clamped to the largest the server allows, not trusted.
    s.socket.emit("resize", { cols: 100000, rows: -3 });
    const from = s.output().length;
    s.type("stty size");
    await s.waitForOutput(/\b2 500\b/, 10_000, from);
    expect(bystander.events.filter((e) => e.event === "failure").length).toBe(failuresBefore);
    await bystanderUndisturbed("malformed");
    s.close();
  });

  it("refuses input larger than the protocol allows, and closes a connection that sends a message past the transport limit", async () => {
    const s = await server.student();
    await s.start();
    const failed = s.next("failure", 5000);
    s.socket.emit("input", "x".repeat(100 * 1024));
    expect((await failed)[0]).toMatch(/invalid input/);
    expect(s.socket.connected).toBe(true);

    const gone = s.next("disconnect", 10_000);
    s.socket.emit("input", "y".repeat(2 * 1024 * 1024));
    await gone;
    await bystanderUndisturbed("oversized");
    // The session outlives the connection: the same browser reattaches.
    const back = await server.student({ cookie: s.cookie });
    expect((await back.next("session", 5000, true))[0]).toMatchObject({ image: "alpine:latest" });
    back.close();
  });

  it("rate-limits a flood of messages without disturbing others", async () => {
    const s = await server.student();
    await s.start();
    for (let i = 0; i < 5000; i++) s.socket.emit("resize", { cols: 80 + (i % 10), rows: 24 });
    const [message] = await s.next("failure", 10_000, true);
    expect(message).toMatch(/too many/);
    await bystanderUndisturbed("flood");
    s.close();
  });

  it("cuts a flood of keystrokes to the input limit's burst, says so, and takes input again once it refills", async () => {
    const s = await server.student();
    await s.start();
    s.type("echo rea''dy; cat > /tmp/typed");
    await s.waitForOutput(/ready/);
    // 2000 keystrokes at once: the limit lets its burst (400, less the ones above) through, then refuses.
    for (let i = 0; i < 2000; i++) s.socket.emit("input", "a");
    expect((await s.next("failure", 10_000, true))[0]).toBe('too many "input" messages: slow down');
    await new Promise((r) => setTimeout(r, 2500)); // the bucket refills (200 a second, up to 400)
    const mark = s.output().length;
    s.socket.emit("input", "\r\x04");
    s.type("echo got-$(tr -cd a < /tmp/typed | wc -c)-keys");
    const [, got] = (await s.waitForOutput(/got-(\d+)-keys/, 10_000, mark)) as unknown as [string, string];
    expect(Number(got)).toBeGreaterThanOrEqual(390);
    expect(Number(got)).toBeLessThan(2000);
    expect(s.socket.connected).toBe(true);
    await bystanderUndisturbed("typing-flood");
    s.close();
  });

  it("limits an instructor's messages too: a flood is refused on that socket, which stays connected and is served again", async () => {
    const s = await server.student();
    const info = await s.start();
    const flooder = await server.instructor();
    const calm = await server.instructor();
    const failures: string[] = [];
    flooder.on("failure", (m: string) => failures.push(m));
    calm.on("failure", (m: string) => failures.push(`calm: ${m}`));
    for (let i = 0; i < 500; i++) flooder.emit("unwatch");
    await expect.poll(() => failures, { timeout: 10_000 }).toContain("too many messages: slow down");

    // The calm instructor is served at once; the flooder once its bucket refills (20 a second, up to 40).
    const seen = { calm: "", flooder: "" };
    calm.on("output", (id: string, data: string) => id === info.id && (seen.calm += data));
    flooder.on("output", (id: string, data: string) => id === info.id && (seen.flooder += data));
    calm.emit("watch", info.id);
    s.type("echo watched-$((40+2))");
    await expect.poll(() => seen.calm, { timeout: 10_000 }).toMatch(/watched-42/);
    await new Promise((r) => setTimeout(r, 2500));
    expect(flooder.connected).toBe(true);
    flooder.emit("watch", info.id);
    await expect.poll(() => seen.flooder, { timeout: 10_000 }).toMatch(/watched-42/); // the replay
    expect(failures.filter((f) => f.startsWith("calm"))).toEqual([]);
    flooder.close();
    calm.close();
    s.close();
  });

  it("stays up when a page resizes a terminal whose shell has just exited", async () => {
    const s = await server.student();
    await s.start();
    s.type("exit");
    // The shell's terminal closes at once; its session ends only once the
    // container is cleaned up. Resizes keep coming in between, as they do
    // from a browser window being dragged.
    for (let i = 0; i < 30; i++) {
      s.socket.emit("resize", { cols: 80 + (i % 10), rows: 24 + (i % 5) });
      await new Promise((r) => setTimeout(r, 50));
    }
    const [reason] = await s.next("ended", 10_000, true);
    expect(reason).toBe("the shell exited (code 0)");
    await bystanderUndisturbed("resize-after-exit");
    s.close();
  });

  it("gives a session only to the browser holding its cookie", async () => {
    const stranger = await server.student();
    // A new browser sees no session, and nothing it can send names another one.
    expect(await stranger.next("session", 5000, true)).toEqual([null]);
    stranger.socket.emit("input", "echo intruder\r");
    expect((await stranger.next("failure", 5000))[0]).toMatch(/no session/);
    expect(bystander.output()).not.toMatch(/intruder/);
    stranger.close();
  });

  it("sets the session cookie httpOnly and SameSite=Lax on the handshake, and refuses other web sites", async () => {
    const res = await server.api("/socket.io/?EIO=4&transport=polling");
    expect(res.status).toBe(200);
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^pg_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    const foreign = await server.api("/socket.io/?EIO=4&transport=polling", { headers: { origin: "http://evil.example" } });
    expect(foreign.status).toBe(403);
  });
});

describe("the HTTP API", () => {
  it("refuses the admin reset without the admin token, and changes nothing", async () => {
    const before = (await server.rows()).filter((r) => r.state === "running").length;
    expect(before).toBeGreaterThan(0);
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong-token-1234" },
      { authorization: `Bearer ${INSTRUCTOR_TOKEN}` },
      { authorization: ADMIN_TOKEN }, // no "Bearer"
    ];
    for (const headers of attempts) {
      const res = await server.api("/api/admin/reset", { method: "POST", headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toMatch(/token/);
    }
    expect((await server.rows()).filter((r) => r.state === "running").length).toBe(before);
    await bystanderUndisturbed("401");
  });

  it("refuses the session list without a token, and bad methods, bodies and routes", async () => {
    expect((await server.api("/api/sessions")).status).toBe(401);
    expect((await server.api("/api/sessions", { headers: { authorization: "Bearer nope-nope-nope" } })).status).toBe(401);
    expect((await server.api("/api/sessions", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
    expect((await server.api("/api/admin/reset", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(405);
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
    expect((await server.api("/api/admin/reset", { method: "POST", headers: auth, body: "{not json" })).status).toBe(400);
    expect((await server.api("/api/admin/reset", { method: "POST", headers: auth, body: '{"everything":true}' })).status).toBe(400);
    expect((await server.api("/api/admin/reset", { method: "POST", headers: auth, body: "x".repeat(100_000) })).status).toBe(413);
    expect((await server.api("/api/nothing-here")).status).toBe(404);
    await bystanderUndisturbed("api");
  });

  it("reports health without a token", async () => {
    const res = await server.api("/api/health");
    const body = (await res.json()) as { ok: boolean; database: boolean; kernel: Record<string, { ok: boolean }> };
    expect(res.status).toBe(body.ok ? 200 : 503);
    expect(body.database).toBe(true);
    expect(body.kernel.cgroups.ok).toBe(true);
    expect(body.kernel.userns.ok).toBe(true);
    expect(body.kernel.overlay.ok).toBe(true);
  });

  it("resets with the admin token: every session ends, told why, and every container is removed", async () => {
    const other = await server.student();
    await other.start();
    const res = await server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    const summary = (await res.json()) as { ok: boolean; sessionsEnded: number; removed: { removed: string[]; failed: string[] } };
    expect(summary.ok).toBe(true);
    expect(summary.sessionsEnded).toBeGreaterThanOrEqual(2);
    expect(summary.removed.failed).toEqual([]);
    expect((await other.next("ended", 5000, true))[0]).toMatch(/reset/);
    expect((await bystander.next("ended", 5000, true))[0]).toMatch(/reset/);
    expect((await server.rows()).filter((r) => r.state !== "ended")).toEqual([]);
    const leaks = await server.leaks();
    expect(leaks.code, leaks.stdout).toBe(0);
    other.close();
  });
});

describe("the admin reset's network cleanup", () => {
  /** What of the playground's network the host shows: its bridge, its nftables tables, rules naming the subnet, its iptables FORWARD rules. */
  async function networkObjects(subnet: string) {
    const bridges = (JSON.parse((await run("ip", ["-j", "link", "show", "type", "bridge"])).stdout) as { ifname: string }[]).map((l) => l.ifname);
    const tables = (await run("nft", ["list", "tables"])).stdout.split("\n").filter((l) => /\bplayground$/.test(l.trim()));
    const subnetRules = (await run("nft", ["list", "ruleset"])).stdout.split("\n").filter((l) => l.includes(subnet));
    const forward = await run("iptables", ["-w", "-S", "FORWARD"]).then((r) => r.stdout.split("\n").filter((l) => l.includes("playground:")), () => []);
    return { bridge: bridges.includes("pg0"), tables, subnetRules, forward };
  }

  it("removes the bridge, the firewall's tables and the subnet's NAT rule while the server runs on", async () => {
    const s = await server.student();
    const info = await s.start();
    const subnet = info.ip.split(".").slice(0, 2).join(".") + ".0.0/16";
    const before = await networkObjects(subnet);
    // The checks see what a running session needs: they can fail.
    expect(before.bridge).toBe(true);
    expect(before.tables.sort()).toEqual(["table bridge playground", "table inet playground"]);
    expect(before.subnetRules.some((l) => /masquerade/.test(l))).toBe(true);

    const res = await server.api("/api/admin/reset", { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    const { removed } = (await res.json()) as { removed: { removed: string[]; failed: string[] } };
    // (The last session's end took the bridge with it already: the report lists only what was left after the sessions.)
    expect(removed.failed).toEqual([]);

    // Still serving (not stopped: a stopping server cleans up by itself), and nothing of the network is left.
    expect((await server.api("/api/health")).status).toBeLessThan(500);
    expect(await networkObjects(subnet)).toEqual({ bridge: false, tables: [], subnetRules: [], forward: [] });
    s.close();
  });
});
