// GET /metrics, as a Prometheus server scrapes it: the text format parses
// (tests/fixtures/prometheus.ts is strict), it counts what happened in this
// test (the default image's pull, a session started, running with its usage,
// ended by its shell's exit), and it is refused without a token. Real server,
// real container.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parsePrometheusText, sampleValue, type PromFamily } from "../fixtures/prometheus.ts";
import { ADMIN_TOKEN, INSTRUCTOR_TOKEN, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

const METRICS_TOKEN = "metrics-token-for-tests";

let server: TestServer;
const students: Student[] = [];

beforeAll(async () => {
  server = await startServer(inject("registry"), { PLAYGROUND_METRICS_TOKEN: METRICS_TOKEN });
  await server.waitForLog(/^default image ready$/);
});
afterAll(async () => {
  for (const s of students) s.close();
  await server?.stop();
});

async function scrape(token = METRICS_TOKEN): Promise<Map<string, PromFamily>> {
  const res = await server.api("/metrics", { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parsePrometheusText(await res.text());
}

describe("/metrics", () => {
  it("is refused without a token, with a wrong one and with the join code; any of the three tokens opens it", async () => {
    expect((await server.api("/metrics")).status).toBe(401);
    for (const wrong of ["wrong-token-0123456789", "TESTROOM"]) {
      const res = await server.api("/metrics", { headers: { authorization: `Bearer ${wrong}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe("Bearer");
      expect(await res.text()).not.toMatch(/playground_/);
    }
    expect((await server.api("/metrics", { method: "POST", headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(405);
    for (const token of [METRICS_TOKEN, INSTRUCTOR_TOKEN, ADMIN_TOKEN]) await scrape(token);
  });

  it("counts the default image's pull, a session started, its start time, its usage, and its end by reason", async () => {
    const before = await scrape();
    expect(before.get("playground_sessions_started_total")?.type).toBe("counter");
    expect(before.get("playground_session_start_seconds")?.type).toBe("histogram");
    expect(sampleValue(before, "playground_sessions_started_total")).toBe(0);
    expect(sampleValue(before, "playground_sessions_live", { state: "running" })).toBe(0);
    // The server pulled the default image at start: one pull, ok, timed.
    expect(sampleValue(before, "playground_image_pulls_total", { outcome: "ok" })).toBe(1);
    expect(sampleValue(before, "playground_image_pull_seconds_count")).toBe(1);

    const s = await server.student();
    students.push(s);
    const info = await s.start("Zoë O'Brien");
    const during = await scrape();
    expect(sampleValue(during, "playground_sessions_started_total")).toBe(1);
    expect(sampleValue(during, "playground_sessions_live", { state: "running" })).toBe(1);
    expect(sampleValue(during, "playground_session_start_seconds_count")).toBe(1);
    expect(sampleValue(during, "playground_session_start_seconds_sum")).toBeGreaterThan(0);
    const labels = { session: info.id, student: "Zoë O'Brien" };
    expect(sampleValue(during, "playground_session_memory_bytes", labels)).toBeGreaterThan(0);
    expect(sampleValue(during, "playground_session_cpu_percent", labels)).toBeGreaterThanOrEqual(0);
    expect(sampleValue(during, "playground_sockets_open", { namespace: "student" })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(during, "playground_sockets_open", { namespace: "instructor" })).toBe(0);

    s.type("exit 3");
    expect(await s.next("ended", 20_000)).toEqual([expect.stringMatching(/the shell exited \(code 3\)/)]);
    await expect
      .poll(async () => sampleValue(await scrape(), "playground_sessions_ended_total", { reason: "exited" }), { timeout: 10_000 })
      .toBe(1);
    const after = await scrape();
    expect(sampleValue(after, "playground_sessions_live", { state: "running" })).toBe(0);
    // An ended session's usage is no longer reported.
    expect(sampleValue(after, "playground_session_memory_bytes", labels)).toBeUndefined();
  });
});
