// GET /metrics: the playground's figures for Prometheus (text format), for
// whoever shows the instructor's or the admin's token, or the scraper's own
// (PLAYGROUND_METRICS_TOKEN), as `Authorization: Bearer …`:
//   playground_sessions_live{state}           sessions starting and running
//   playground_sessions_started_total         sessions started
//   playground_sessions_ended_total{reason}   sessions ended, by why (registry.ts's EndCause)
//   playground_session_start_seconds          from Start to a running shell (histogram)
//   playground_image_pulls_total{outcome}     pulls from a registry, ok or failed
//   playground_image_pull_seconds             how long they took (histogram)
//   playground_session_cpu_percent{session,student}    each running session's CPU (100 = one core)
//   playground_session_memory_bytes{session,student}   and memory
//   playground_sockets_open{namespace}        browsers connected, students' and instructors'
// Other parts register their own families on the same registry (a warm pool
// its "ready" gauge) through `metrics.registry`.
import type { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { EXPOSITION_CONTENT_TYPE, MetricsRegistry, type Sample } from "../common/metrics.ts";
import type { SessionRow } from "../common/protocol.ts";
import type { EngineEvents } from "../engine/engine.ts";
import type { SessionRegistry } from "../sessions/registry.ts";
import { sendJson } from "./http-json.ts";
import { bearerToken, roleOf, tokenMatches, type Tokens } from "./tokens.ts";

export const METRICS_PATH = "/metrics";

/** Seconds: a start takes well under one with the image at hand, a minute or more when it is pulled first. */
const START_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];
/** Seconds: from a few for a small image to many minutes for a large one on a slow link. */
const PULL_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];

export interface MetricsSources {
  sessions: SessionRegistry;
  engine: EventEmitter<EngineEvents>;
  /** Open sockets, by namespace. */
  sockets(): Record<string, number>;
}

/** The playground's metrics, fed by the sessions and the engine from now on. */
export function playgroundMetrics(sources: MetricsSources): MetricsRegistry {
  const metrics = new MetricsRegistry();
  const { sessions } = sources;

  metrics.gaugeFrom("playground_sessions_live", "Sessions not yet ended, by state.", () => {
    const live = sessions.live();
    return (["starting", "running"] as const).map((state) => ({ labels: { state }, value: live.filter((s) => s.state === state).length }));
  });
  const started = metrics.counter("playground_sessions_started_total", "Sessions started.");
  started.inc(undefined, 0);
  const ended = metrics.counter("playground_sessions_ended_total", "Sessions ended, by reason.");
  const startSeconds = metrics.histogram("playground_session_start_seconds", "Time from a student's Start to a running shell.", START_BUCKETS);
  sessions.on("started", () => started.inc());
  sessions.on("running", (seconds) => startSeconds.observe(seconds));
  sessions.on("ended", (reason) => ended.inc({ reason }));

  const pulls = metrics.counter("playground_image_pulls_total", "Image pulls from a registry, by outcome.");
  const pullSeconds = metrics.histogram("playground_image_pull_seconds", "Time an image pull took.", PULL_BUCKETS);
  sources.engine.on("pulled", ({ seconds, ok }) => {
    pulls.inc({ outcome: ok ? "ok" : "failed" });
    pullSeconds.observe(seconds);
  });

  // One reading per scrape for both: a second one right after would measure CPU over no time at all.
  let usage: SessionRow[] = [];
  metrics.beforeScrape(async () => {
    usage = await sessions.liveRows();
  });
  const perSession = (value: (row: SessionRow) => number | undefined): Sample[] =>
    usage.flatMap((row) => {
      const v = value(row);
      return v === undefined ? [] : [{ labels: { session: row.id, student: row.studentName ?? "" }, value: v }];
    });
  metrics.gaugeFrom("playground_session_cpu_percent", "CPU use of each running session's container since the last reading (100 = one core).", () => perSession((r) => r.cpuPercent));
  metrics.gaugeFrom("playground_session_memory_bytes", "Memory use of each running session's container.", () => perSession((r) => r.memoryBytes));

  metrics.gaugeFrom("playground_sockets_open", "Open socket.io connections, by namespace.", () =>
    Object.entries(sources.sockets()).map(([namespace, value]) => ({ labels: { namespace }, value })),
  );
  return metrics;
}

/** Serves GET /metrics to a holder of the instructor's, the admin's or the metrics token; returns false for any other path. */
export function metricsHandler(deps: { metrics: MetricsRegistry; tokens: Tokens; metricsToken?: string; log: Logger }): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== METRICS_PATH) return false;
    if (req.method !== "GET") {
      sendJson(res, 405, { error: "use GET" }, { allow: "GET" });
      return true;
    }
    const token = bearerToken(req.headers.authorization);
    // Both comparisons always run: the time taken does not say which token was tried.
    const scraper = deps.metricsToken !== undefined && tokenMatches(token, deps.metricsToken);
    if (!roleOf(token, deps.tokens) && !scraper) {
      sendJson(res, 401, { error: "a valid metrics, instructor or admin token is required (Authorization: Bearer …)" }, { "www-authenticate": "Bearer" });
      return true;
    }
    deps.metrics.exposition().then(
      (text) => {
        res.writeHead(200, { "content-type": EXPOSITION_CONTENT_TYPE, "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
        res.end(text);
      },
      (error: unknown) => {
        deps.log.error({ err: String(error) }, "metrics could not be gathered");
        sendJson(res, 500, { error: "internal error; see the server log" });
      },
    );
    return true;
  };
}
