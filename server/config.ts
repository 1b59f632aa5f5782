// Every setting of the playground, read from the environment once, validated,
// with the defaults a classroom host needs. Nothing else reads process.env
// (but data-dir.ts, the one setting the listing commands need, read alone).
import path from "node:path";
import { z } from "zod";
import { Cpus, IoRate, Memory, PidsLimit, sizeText, WritableLayerSize, type ContainerLimits } from "./common/limits.ts";
import { MAX_JOIN_CODE_CHARS } from "./common/protocol.ts";
import { FAILPOINTS, type Failpoint } from "./engine/lifecycle/failpoints.ts";
import { parseAllowed, type AllowedDestination } from "./engine/network/egress.ts";
import { dataDirSetting, DEFAULT_DATA_DIR } from "./data-dir.ts";

const duration = z.coerce.number().int().positive();
const csv = z
  .string()
  .transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));

const schema = z.object({
  PLAYGROUND_DATA_DIR: z.string().default(DEFAULT_DATA_DIR),
  PLAYGROUND_REGISTRY_MIRROR: z.url().optional(),
  PLAYGROUND_INSECURE_REGISTRIES: csv.default([]),
  // Container ids map above every ordinary host account, never onto one.
  PLAYGROUND_UID_BASE: z.coerce.number().int().min(65536, "must be at least 65536, above the host's own accounts").default(100000),
  PLAYGROUND_UID_COUNT: z.coerce.number().int().min(1).max(2 ** 31).default(65536),
  PLAYGROUND_MEMORY: Memory.default(256 * 1024 ** 2),
  PLAYGROUND_CPUS: Cpus.default(0.5),
  PLAYGROUND_PIDS_LIMIT: PidsLimit.default(512),
  PLAYGROUND_WRITABLE_LAYER_SIZE: WritableLayerSize.default(1024 ** 3),
  PLAYGROUND_IO_BPS: z.union([z.literal("0").transform(() => 0), sizeText(1, "the I/O rate")]).default(50 * 1024 ** 2),
  PLAYGROUND_IO_IOPS: IoRate.default(1000),
  // "unconfined" runs containers without the system-call filter (a warning is logged).
  PLAYGROUND_SECCOMP: z.enum(["default", "unconfined"]).default("default"),
  // Students' files are kept this many days after a session ends (0: not kept), up to this size compressed.
  PLAYGROUND_KEEP_WORK_DAYS: z.coerce.number().int().min(0).max(3650).default(7),
  PLAYGROUND_KEEP_WORK_MAX: sizeText(1024, "the kept work's size").default(50 * 1024 ** 2),
  // Sessions' terminals are recorded (asciicast v2) and kept this many days after they end (0: not recorded),
  // all recordings together up to this size (the oldest ended ones go first); keystrokes too with RECORD_INPUT=1.
  PLAYGROUND_RECORDINGS_DAYS: z.coerce.number().int().min(0).max(3650).default(14),
  PLAYGROUND_RECORDINGS_MAX: sizeText(1024 ** 2, "the recordings' size").default(1024 ** 3),
  PLAYGROUND_RECORD_INPUT: z.enum(["0", "1"]).default("0"),
  // "1": a stopping server ends every session (an upgrade keeps them running by default).
  PLAYGROUND_END_ON_STOP: z.enum(["0", "1"]).default("0"),
  // Tests only: kill this process at that point of a container's start (engine/lifecycle/failpoints.ts).
  PLAYGROUND_FAILPOINT: z
    .union([z.literal(""), z.enum(FAILPOINTS)])
    .optional()
    .transform((v) => v || undefined),
  // What containers may reach: the internet only, or nothing; and exceptions a class needs (CIDR[:PORT],…).
  PLAYGROUND_EGRESS: z.enum(["internet", "none"]).default("internet"),
  PLAYGROUND_EGRESS_ALLOW: csv.default([]),
  // DNS servers for the containers (IPv4, comma-separated); the host's when unset.
  PLAYGROUND_DNS: csv.pipe(z.array(z.ipv4({ message: "expected IPv4 addresses" }))).default([]),
  // 0 picks any free port (the tests do); the log's "listening" line says which.
  PLAYGROUND_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  // The port previews' own listener (their own origin); by default the next port after PLAYGROUND_PORT.
  PLAYGROUND_PREVIEW_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  // The largest file a student may upload into their container, or download from it.
  PLAYGROUND_UPLOAD_MAX: sizeText(1, "the upload limit").default(64 * 1024 ** 2),
  PLAYGROUND_HOST: z.string().default("0.0.0.0"),
  PLAYGROUND_IMAGE: z.string().default("alpine:latest"),
  PLAYGROUND_INSTRUCTOR_TOKEN: z.string().min(8).optional(),
  PLAYGROUND_ADMIN_TOKEN: z.string().min(8).optional(),
  // A token for a Prometheus scraper: GET /metrics and nothing else (the instructor's and admin's tokens work too).
  PLAYGROUND_METRICS_TOKEN: z.string().min(8).optional(),
  // What students type to get a shell; generated when unset; "none" opens the room to anyone who reaches it.
  PLAYGROUND_JOIN_CODE: z
    .string()
    .regex(new RegExp(`^(none|[A-Za-z0-9]{4,${MAX_JOIN_CODE_CHARS}})$`), `expected 4 to ${MAX_JOIN_CODE_CHARS} letters and digits, or "none"`)
    .optional(),
  // Session starts per client address: a burst (a class behind one NAT), then this many a minute.
  PLAYGROUND_START_BURST: z.coerce.number().int().min(1).default(60),
  PLAYGROUND_START_PER_MINUTE: z.coerce.number().min(0).default(30),
  // The names this server answers to (Host header), beside its own addresses and hostname: DNS rebinding cannot drive it.
  PLAYGROUND_ALLOWED_HOSTS: csv.default([]),
  PLAYGROUND_TLS_CERT: z.string().optional(),
  PLAYGROUND_TLS_KEY: z.string().optional(),
  // "1": a TLS proxy in front: X-Forwarded-For names the client, X-Forwarded-Proto the scheme.
  PLAYGROUND_TRUST_PROXY: z.enum(["0", "1"]).default("0"),
  PLAYGROUND_MAX_SESSIONS: z.coerce.number().int().positive().default(50),
  // What all of one student's containers (their instances) may use together; default: one container's share.
  PLAYGROUND_SESSION_MEMORY: Memory.optional(),
  PLAYGROUND_SESSION_PIDS: PidsLimit.optional(),
  // Containers one student may have at once ("+ instance"), or a room's fixed set of named ones (lessons/topologies/NAME.json).
  PLAYGROUND_MAX_INSTANCES: z.coerce.number({ message: "expected a whole number" }).int("expected a whole number").min(1).max(5).default(3),
  PLAYGROUND_TOPOLOGY: z.string().optional(),
  // Containers kept ready for the next students (0: none; each start then builds one).
  PLAYGROUND_WARM_POOL: z.coerce.number({ message: "expected a whole number" }).int("expected a whole number").min(0).max(200).default(4),
  PLAYGROUND_GRACE_SECONDS: duration.default(5 * 60),
  PLAYGROUND_IDLE_SECONDS: duration.default(30 * 60),
  PLAYGROUND_LIFETIME_SECONDS: duration.default(4 * 60 * 60),
  // "0" serves only the HTTP API and socket.io, without the Next.js pages:
  // the server-level tests use it so they need no `next build`.
  PLAYGROUND_WEB_UI: z.enum(["0", "1"]).default("1"),
  // Where `next build` put the pages (next.config.mjs: a static export goes to out/ unless this names
  // another directory of the checkout; the browser tests build their own).
  PLAYGROUND_NEXT_DIST: z.string().regex(/^\.?[A-Za-z0-9_.-]+$/, "a directory name in the checkout").optional(),
  // What container root may do: "nested" opens user namespaces, mounts and a cgroup subtree
  // inside (build-your-own-container labs); unset: default, or what the room's lesson asks for.
  PLAYGROUND_PROFILE: z.enum(["default", "nested"]).optional(),
  // The lesson every student of the room follows (a folder name under lessons/); unset: students pick.
  PLAYGROUND_LESSON: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "a lesson's folder name").optional(),
  // A course's own lessons, beside the shipped ones (a folder of lesson folders).
  PLAYGROUND_LESSONS_DIR: z.string().optional(),
  PLAYGROUND_LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});

/** The name of every setting (docs/playground.service names some; its test checks they exist). */
export const SETTING_NAMES: readonly string[] = Object.keys(schema.shape);

export interface Config {
  /** Root of all state: image store, container directories, the SQLite record. */
  dataDir: string;
  /** Where docker.io images are fetched from instead of Docker Hub, like dockerd's registry-mirrors. */
  registryMirror?: string;
  /** host[:port] entries that may be spoken to over plain HTTP. */
  insecureRegistries: string[];
  /** Host uid/gid that container root maps to, and how many ids the container gets. */
  uidBase: number;
  uidCount: number;
  container: ContainerLimits & {
    writableLayerBytes: number;
    /** The system-call filter every container runs under, or none. */
    seccomp: "default" | "unconfined";
    /** What containers may reach beyond the bridge. */
    egress: { mode: "internet" | "none"; allow: AllowedDestination[] };
    /** DNS servers for containers; empty: the host's. */
    dns: string[];
  };
  web: {
    port: number;
    /** Where port previews are served: a listener, and so an origin, of their own. */
    previewPort: number;
    host: string;
    image: string;
    instructorToken?: string;
    adminToken?: string;
    /** Opens GET /metrics only. */
    metricsToken?: string;
    joinCode?: string;
    /** Session starts per client address. */
    startLimit: { burst: number; perMinute: number };
    /** Host header values accepted beside the server's own names and addresses. */
    allowedHosts: string[];
    tls?: { cert: string; key: string };
    trustProxy: boolean;
    maxSessions: number;
    /** Containers made ahead of need, waiting for students. */
    warmPool: number;
    /** Containers one student may have at once (their instances), and a room's fixed set of them (lessons/topologies/NAME.json). */
    maxInstances: number;
    topology?: string;
    /** What all of one student's containers may use together. */
    sessionCap: { memoryBytes: number; pidsLimit: number };
    graceMs: number;
    idleMs: number;
    lifetimeMs: number;
    /** Serve the Next.js pages (false: API and socket.io only). */
    ui: boolean;
    /** The directory of the built pages, in the checkout. */
    pagesDir: string;
    /** End every session when the server stops (otherwise their containers run on, and the next server adopts them). */
    endOnStop: boolean;
    /** Students' files kept between sessions. */
    keepWork: { days: number; maxBytes: number };
    /** What container root may do, when set (else the room lesson's choice, else default). */
    profile?: "default" | "nested";
    /** The room's lesson for everyone, and a course's own lessons folder. */
    lesson?: string;
    lessonsDir?: string;
    /** The largest file a student may upload or download. */
    fileMaxBytes: number;
    /** Sessions' recordings: kept for days after they end (0: none made), up to maxBytes together. */
    recordings: { days: number; maxBytes: number; recordInput: boolean };
  };
  logLevel: string;
  /** Tests only: where to crash on purpose (engine/lifecycle/failpoints.ts). */
  failpoint?: Failpoint;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new Error(`invalid setting ${String(first.path[0])}: ${first.message}`);
  }
  const e = parsed.data;
  return {
    dataDir: dataDirSetting(env),
    registryMirror: e.PLAYGROUND_REGISTRY_MIRROR,
    insecureRegistries: e.PLAYGROUND_INSECURE_REGISTRIES,
    uidBase: e.PLAYGROUND_UID_BASE,
    uidCount: e.PLAYGROUND_UID_COUNT,
    container: {
      memoryBytes: e.PLAYGROUND_MEMORY,
      cpus: e.PLAYGROUND_CPUS,
      pidsLimit: e.PLAYGROUND_PIDS_LIMIT,
      ioBps: e.PLAYGROUND_IO_BPS,
      ioIops: e.PLAYGROUND_IO_IOPS,
      writableLayerBytes: e.PLAYGROUND_WRITABLE_LAYER_SIZE,
      seccomp: e.PLAYGROUND_SECCOMP,
      egress: { mode: e.PLAYGROUND_EGRESS, allow: parseAllowList(e.PLAYGROUND_EGRESS_ALLOW) },
      dns: e.PLAYGROUND_DNS,
    },
    web: {
      port: e.PLAYGROUND_PORT,
      previewPort: previewPort(e.PLAYGROUND_PORT, e.PLAYGROUND_PREVIEW_PORT),
      host: e.PLAYGROUND_HOST,
      image: e.PLAYGROUND_IMAGE,
      instructorToken: e.PLAYGROUND_INSTRUCTOR_TOKEN,
      adminToken: e.PLAYGROUND_ADMIN_TOKEN,
      metricsToken: e.PLAYGROUND_METRICS_TOKEN,
      joinCode: e.PLAYGROUND_JOIN_CODE,
      startLimit: { burst: e.PLAYGROUND_START_BURST, perMinute: e.PLAYGROUND_START_PER_MINUTE },
      allowedHosts: e.PLAYGROUND_ALLOWED_HOSTS,
      tls: tlsSetting(e.PLAYGROUND_TLS_CERT, e.PLAYGROUND_TLS_KEY),
      trustProxy: e.PLAYGROUND_TRUST_PROXY === "1",
      maxSessions: e.PLAYGROUND_MAX_SESSIONS,
      warmPool: e.PLAYGROUND_WARM_POOL,
      maxInstances: e.PLAYGROUND_MAX_INSTANCES,
      topology: e.PLAYGROUND_TOPOLOGY,
      sessionCap: {
        memoryBytes: e.PLAYGROUND_SESSION_MEMORY ?? e.PLAYGROUND_MEMORY,
        pidsLimit: e.PLAYGROUND_SESSION_PIDS ?? e.PLAYGROUND_PIDS_LIMIT,
      },
      graceMs: e.PLAYGROUND_GRACE_SECONDS * 1000,
      idleMs: e.PLAYGROUND_IDLE_SECONDS * 1000,
      lifetimeMs: e.PLAYGROUND_LIFETIME_SECONDS * 1000,
      ui: e.PLAYGROUND_WEB_UI === "1",
      pagesDir: e.PLAYGROUND_NEXT_DIST ?? "out",
      endOnStop: e.PLAYGROUND_END_ON_STOP === "1",
      keepWork: { days: e.PLAYGROUND_KEEP_WORK_DAYS, maxBytes: e.PLAYGROUND_KEEP_WORK_MAX },
      profile: e.PLAYGROUND_PROFILE,
      lesson: e.PLAYGROUND_LESSON,
      lessonsDir: e.PLAYGROUND_LESSONS_DIR && path.resolve(e.PLAYGROUND_LESSONS_DIR),
      fileMaxBytes: e.PLAYGROUND_UPLOAD_MAX,
      recordings: { days: e.PLAYGROUND_RECORDINGS_DAYS, maxBytes: e.PLAYGROUND_RECORDINGS_MAX, recordInput: e.PLAYGROUND_RECORD_INPUT === "1" },
    },
    logLevel: e.PLAYGROUND_LOG_LEVEL,
    failpoint: e.PLAYGROUND_FAILPOINT,
  };
}

function parseAllowList(entries: string[]): AllowedDestination[] {
  return entries.map((entry) => {
    try {
      return parseAllowed(entry);
    } catch (error) {
      throw new Error(`invalid setting PLAYGROUND_EGRESS_ALLOW: ${(error as Error).message}`);
    }
  });
}

/** The preview listener's port: as set, else the main port + 1 (any free port when the main one is). */
function previewPort(main: number, set: number | undefined): number {
  const port = set ?? (main === 0 ? 0 : main + 1);
  if (port !== 0 && port === main) throw new Error("invalid setting PLAYGROUND_PREVIEW_PORT: port previews need a port of their own, not PLAYGROUND_PORT's");
  if (port > 65535) throw new Error("invalid setting PLAYGROUND_PREVIEW_PORT: PLAYGROUND_PORT + 1 is past 65535: set it");
  return port;
}

function tlsSetting(cert: string | undefined, key: string | undefined): { cert: string; key: string } | undefined {
  if (!cert && !key) return undefined;
  if (!cert || !key) throw new Error("invalid setting PLAYGROUND_TLS_CERT / PLAYGROUND_TLS_KEY: set both, or neither");
  return { cert, key };
}
