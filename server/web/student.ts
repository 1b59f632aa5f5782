// The students' socket.io namespace ("/"): a page starts a session, types into
// it, resizes it, and reads its output. Every message is untrusted: it is
// validated against the protocol's schemas and rate-limited, and a bad one
// gets a `failure` on that socket only. A socket reaches only the session of
// its own browser's cookie: there is no message that names another session.
// A page also raises a hand, lets the instructor type (or not), and shows the
// instructor's notice to the room.
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import type { Namespace, Server, Socket } from "socket.io";
import type { Session, StudentClient } from "../sessions/session.ts";
import { hashCookie, SessionRefused, type SessionRegistry } from "../sessions/registry.ts";
import type { AddressLimits } from "./address-limits.ts";
import { newSecret, secretFromCookieHeader, sessionCookie } from "./cookies.ts";
import type { RequestGuard } from "./request-guard.ts";
import { joinCodeMatches } from "./tokens.ts";
import type { Classroom } from "../lessons/classroom.ts";
import { LESSON_EVENTS, lessonEvents } from "./student-lessons.ts";
import type { RoomNotice } from "./room-notice.ts";
import {
  Ack,
  Input,
  InstanceNumber,
  Resize,
  StartRequest,
  Toggle,
  type StudentClientEvents,
  type StudentServerEvents,
  type StudentSettings,
} from "../common/protocol.ts";
import { queuedPackets } from "./backlog.ts";
import { RateLimit, throttledRefusal } from "./rate-limit.ts";
import { firstIssue } from "../common/validation.ts";

type StudentSocket = Socket<StudentClientEvents, StudentServerEvents>;

/**
 * Output messages a student's socket may have waiting for the network. An
 * honest page acknowledges what it draws and never gets near this (flow
 * control pauses the pty long before); a page that acknowledges without
 * reading is disconnected here rather than queued for without end.
 */
const MAX_QUEUED_PACKETS = 64;

export const END_BY_STUDENT = "you ended the session";

/** Secrets issued on this connection's handshake, before the browser could send them back. */
const issued = new WeakMap<IncomingMessage, string>();

/** Who may start a shell here: the join code, and how often one address may try. */
export interface RoomDoor {
  /** What students must type, or null for an open room. */
  joinCode: string | null;
  /** Session starts per client address. */
  starts: AddressLimits;
  /** Wrong join codes per client address: guessing is slow. */
  guesses: AddressLimits;
  guard: RequestGuard;
  /** Told to every page on connect. */
  settings: StudentSettings;
}

export function studentNamespace(io: Server, registry: SessionRegistry, log: Logger, cookieMaxAgeSeconds: number, door: RoomDoor, classroom: Classroom, notice: RoomNotice): Namespace {
  // The handshake is the only HTTP response socket.io lets us add a header to:
  // a browser without a (well-formed) session cookie gets one here.
  io.engine.on("initial_headers", (headers: Record<string, string | string[]>, req: IncomingMessage) => {
    if (secretFromCookieHeader(req.headers.cookie)) return;
    const secret = newSecret();
    issued.set(req, secret);
    headers["set-cookie"] = sessionCookie(secret, cookieMaxAgeSeconds, door.guard.secure(req));
  });

  const nsp = io.of("/") as unknown as Namespace<StudentClientEvents, StudentServerEvents>;
  nsp.on("connection", (socket) => {
    connect(socket, registry, log, door, classroom);
    socket.emit("notice", notice.current);
  });
  notice.on("changed", (current) => nsp.emit("notice", current));
  return nsp as unknown as Namespace;
}

function connect(socket: StudentSocket, registry: SessionRegistry, log: Logger, door: RoomDoor, classroom: Classroom): void {
  const secret = secretFromCookieHeader(socket.request.headers.cookie) ?? issued.get(socket.request);
  if (!secret) {
    socket.emit("failure", "this browser sent no session cookie: please enable cookies for this site");
    socket.disconnect(true);
    return;
  }
  // Which of the student's instances this page shows: the handshake says (the first, unless it says otherwise).
  const asked = InstanceNumber.safeParse((socket.handshake.auth as { instance?: unknown } | undefined)?.instance ?? 1);
  if (!asked.success) {
    socket.emit("failure", "this page asked for an instance that cannot be: reload it");
    socket.disconnect(true);
    return;
  }
  const instance = asked.data;
  let session: Session | undefined;
  /** A start on its way: keystrokes typed meanwhile wait for it (typeahead), in order. */
  let starting: Promise<Session | undefined> | undefined;
  let size = { cols: 80, rows: 24 };
  const address = door.guard.clientAddress(socket.request);

  const client: StudentClient = {
    id: socket.id,
    output: (data) => {
      if (queuedPackets(socket) > MAX_QUEUED_PACKETS) {
        log.warn({ socket: socket.id }, "student socket not reading its output: disconnected");
        socket.disconnect(true);
        return;
      }
      socket.emit("output", data);
    },
    session: (info) => {
      socket.emit("session", info);
      lessons.sendState();
    },
    controls: (controls) => socket.emit("controls", controls),
    typing: () => socket.emit("typing"),
    progress: (line) => socket.emit("progress", line),
    lesson: (state) => socket.emit("lesson", state),
    instances: (list) => socket.emit("instances", list),
    ended: (reason) => {
      session = undefined;
      socket.emit("ended", reason);
    },
    failure: (message) => socket.emit("failure", message),
  };

  const refuse = throttledRefusal((message) => socket.emit("failure", message));
  const limits = {
    any: new RateLimit(1000, 2000),
    input: new RateLimit(200, 400),
    resize: new RateLimit(10, 20),
    start: new RateLimit(0.5, 3),
    lesson: new RateLimit(2, 10),
    ports: new RateLimit(2, 10),
    toggle: new RateLimit(2, 10),
  };
  const allowed = (kind: keyof typeof limits) => {
    if (limits.any.take() && (kind === "any" || limits[kind].take())) return true;
    refuse(`too many ${kind === "any" ? "messages" : `"${kind}" messages`}: slow down`);
    return false;
  };

  socket.emit("settings", door.settings);
  // The lesson follows the first instance (its page shows the steps).
  const lessons = lessonEvents(socket, classroom, () => (instance === 1 ? session : undefined), () => allowed("lesson"), refuse, log);
  const first = registry.forCookie(secret);
  const existing = instance === 1 ? first : first?.children.get(instance);
  if (existing) {
    session = existing;
    // attach() sends the session and replays the screen if it is running; if it
    // is still starting, `session` follows once it runs.
    existing.attach(client);
    if (existing.state === "starting") socket.emit("progress", "your container is starting…");
  } else {
    socket.emit("session", null);
    const ending = registry.takeEnding(secret);
    if (ending) socket.emit("ended", ending);
  }
  if (door.joinCode !== null) socket.emit("joinCode", "needed");
  // What this browser kept from earlier sessions, for the start page to offer (or to start afresh).
  registry.work.listFor(hashCookie(secret)).then(
    (kept) => socket.emit("kept", kept.map((k) => ({ ...k, savedAt: k.savedAt.toISOString(), expiresAt: k.expiresAt.toISOString() }))),
    (error) => log.error({ err: String(error) }, "could not list kept work"),
  );

  socket.on("start", (request) => {
    if (!allowed("start")) return;
    const parsed = StartRequest.safeParse(request ?? {});
    if (!parsed.success) return refuse(`invalid start request: ${firstIssue(parsed.error)}`);
    if (session && session.state !== "ended") {
      if (session.state === "running") socket.emit("session", session.info());
      return;
    }
    if (instance > 1) {
      // Another container of a student already in the room: no join code, the first instance's share of the host.
      const first = registry.forCookie(secret);
      if (!first) return socket.emit("failure", "your session has ended: start it again in the first tab");
      starting = registry.startInstance(first, instance, client).then(took, refused);
      return;
    }
    // Wrong codes use up the address's guesses; once they are gone, even the right code waits (a class typing it right uses none).
    const right = joinCodeMatches(parsed.data.code, door.joinCode);
    const outOfGuesses = right ? !door.guesses.available(address) : parsed.data.code !== undefined && !door.guesses.take(address);
    if (outOfGuesses) return socket.emit("failure", "too many wrong join codes from your network: wait a minute, then ask your instructor for the code");
    if (!right) {
      socket.emit("joinCode", parsed.data.code ? "wrong" : "needed");
      return socket.emit("failure", parsed.data.code ? "that join code is not this room's: ask your instructor" : "this room needs a join code: ask your instructor");
    }
    if (!door.starts.take(address)) return socket.emit("failure", "too many sessions were started from your network just now: please try again in a minute");
    starting = registry.start(secret, parsed.data.name, client, size, parsed.data.fresh ?? false).then(took, refused);
  });
  // The start went through: this page follows that session.
  const took = (s: Session) => {
    session = s;
    return s;
  };
  const refused = (error: unknown) => {
    if (error instanceof SessionRefused) {
      socket.emit("failure", error.message);
    } else {
      log.error({ err: String(error) }, "starting a session failed");
      socket.emit("failure", "the server could not start a session; please try again");
    }
    return undefined;
  };

  socket.on("input", (data) => {
    if (!allowed("input")) return;
    const parsed = Input.safeParse(data);
    if (!parsed.success) return refuse(`invalid input: ${firstIssue(parsed.error)}`);
    const type = (s: Session | undefined) => {
      if (!s) return refuse("there is no session to type into: press Start");
      if (!s.input(parsed.data)) refuse("the program in your terminal is not reading its input: what you typed was dropped");
    };
    if (!session && starting) void starting.then(type);
    else type(session);
  });

  socket.on("resize", (value) => {
    if (!allowed("resize")) return;
    const parsed = Resize.safeParse(value);
    if (!parsed.success) return refuse(`invalid size: ${firstIssue(parsed.error)}`);
    size = parsed.data;
    session?.resize(size.cols, size.rows);
  });

  socket.on("ack", (chars) => {
    if (!allowed("any")) return;
    const parsed = Ack.safeParse(chars);
    if (!parsed.success) return refuse(`invalid ack: ${firstIssue(parsed.error)}`);
    session?.ack(socket.id, parsed.data);
  });

  socket.on("end", () => {
    if (!allowed("start")) return;
    if (!session || session.state === "ended") return refuse("there is no session to end");
    registry.end(session, END_BY_STUDENT, "student").catch((error) => log.error({ session: session?.id, err: String(error) }, "ending a session failed"));
  });

  socket.on("ports", () => {
    if (!allowed("ports")) return;
    const container = session?.state === "running" ? session.container : undefined;
    if (!container) return socket.emit("ports", []);
    container.listeningPorts().then(
      (ports) => socket.emit("ports", ports),
      () => socket.emit("ports", []),
    );
  });

  socket.on("hand", (raised) => {
    if (!allowed("toggle")) return;
    const parsed = Toggle.safeParse(raised);
    if (!parsed.success) return refuse(`invalid hand: ${firstIssue(parsed.error)}`);
    if (!session || session.state === "ended") return refuse("there is no session to raise a hand in: press Start");
    registry.raiseHand(session.primary, parsed.data).catch((error) => log.error({ session: session?.id, err: String(error) }, "could not record a raised hand"));
  });

  socket.on("takeover", (value) => {
    if (!allowed("toggle")) return;
    const parsed = Toggle.safeParse(value);
    if (!parsed.success) return refuse(`invalid take-over switch: ${firstIssue(parsed.error)}`);
    if (!session || session.state === "ended") return refuse("there is no session: press Start");
    registry.allowTakeover(session, parsed.data);
  });

  const known = new Set<string>(["start", "input", "resize", "ack", "end", "ports", "hand", "takeover", ...LESSON_EVENTS]);
  socket.onAny((event: unknown) => {
    if (typeof event === "string" && known.has(event)) return;
    if (allowed("any")) refuse(`unknown message "${String(event).slice(0, 40)}"`);
  });

  socket.on("disconnect", () => {
    // While a start is in flight `session` is still unset, but the registry
    // attached this page at once: find the session by the cookie to detach it.
    (session ?? registry.forCookie(secret))?.detach(socket.id);
    session = undefined;
  });
}
