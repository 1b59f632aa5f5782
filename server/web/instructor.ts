// The instructors' socket.io namespace ("/instructor"). Only a socket that
// shows the instructor's (or the admin's) token in its handshake gets in; the
// students' namespace has no way to reach anything here. An instructor gets
// the session list (live ones with CPU, memory and pids, raised hands first,
// then the ended ones) every couple of seconds and whenever it changes, can
// watch one student's terminal, type into it while the student allows it
// ("take over"), see how any session's container was built, end or extend one
// session or all of them, and put up a notice for the whole room.
import type { Logger } from "pino";
import type { Namespace, Server, Socket } from "socket.io";
import type { SessionRegistry } from "../sessions/registry.ts";
import type { Session, Watcher } from "../sessions/session.ts";
import {
  ExtendRequest,
  Input,
  type InstructorClientEvents,
  type InstructorServerEvents,
  type Notice,
  NoticeText,
  type RoomInfo,
  SessionId,
} from "../common/protocol.ts";
import type { RoomNotice } from "./room-notice.ts";
import { queuedPackets } from "./backlog.ts";
import { RateLimit, throttledRefusal } from "./rate-limit.ts";
import { roleOf, type Tokens } from "./tokens.ts";
import { firstIssue } from "../common/validation.ts";

type InstructorSocket = Socket<InstructorClientEvents, InstructorServerEvents>;

/** How often the list is pushed while anyone is looking (usage figures change constantly). */
const PUSH_EVERY_MS = 2000;
/** A burst of changes (a reset ending 50 sessions) becomes one push. */
const CHANGE_DEBOUNCE_MS = 100;
/**
 * At most two lists a second: building one reads every container's usage,
 * and a class starting at once changes it all the time; students' starts
 * share the event loop with it.
 */
const MIN_PUSH_GAP_MS = 500;
/** Output messages an instructor's socket may have waiting before its view is skipped and later redrawn. */
const WATCHER_MAX_QUEUED_PACKETS = 16;

export const END_BY_INSTRUCTOR = "ended by the instructor";

export function instructorNamespace(
  io: Server,
  registry: SessionRegistry,
  tokens: Tokens,
  log: Logger,
  room: () => RoomInfo,
  notice: RoomNotice,
): { nsp: Namespace; stop(): void; roomChanged(): void } {
  const nsp = io.of("/instructor") as unknown as Namespace<InstructorClientEvents, InstructorServerEvents>;

  nsp.use((socket, next) => {
    const token = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
    if (roleOf(token, tokens)) return next();
    log.warn({ address: socket.handshake.address }, "instructor connection refused: wrong or missing token");
    next(new Error("unauthorized: a valid instructor token is required"));
  });

  let pushing: Promise<void> | undefined;
  let again = false;
  let lastPushAt = 0;
  let gap: NodeJS.Timeout | undefined;
  const push = () => {
    if (nsp.sockets.size === 0) return;
    if (pushing) {
      again = true;
      return;
    }
    const wait = lastPushAt + MIN_PUSH_GAP_MS - Date.now();
    if (wait > 0) {
      gap ??= setTimeout(() => {
        gap = undefined;
        push();
      }, wait);
      return;
    }
    lastPushAt = Date.now();
    pushing = registry
      .rows()
      .then((rows) => {
        nsp.emit("sessions", rows);
      })
      .catch((error) => log.error({ err: String(error) }, "could not list sessions"))
      .finally(() => {
        pushing = undefined;
        if (again) {
          again = false;
          push();
        }
      });
  };
  let debounce: NodeJS.Timeout | undefined;
  const onChange = () => {
    debounce ??= setTimeout(() => {
      debounce = undefined;
      push();
    }, CHANGE_DEBOUNCE_MS);
  };
  registry.on("changed", onChange);
  const timer = setInterval(push, PUSH_EVERY_MS);
  timer.unref();
  const onNotice = (current: Notice | null) => nsp.emit("notice", current);
  notice.on("changed", onNotice);

  nsp.on("connection", (socket) => {
    connect(socket, registry, log, notice);
    socket.emit("room", room());
    socket.emit("notice", notice.current);
    push();
  });

  return {
    nsp: nsp as unknown as Namespace,
    stop() {
      clearInterval(timer);
      if (debounce) clearTimeout(debounce);
      if (gap) clearTimeout(gap);
      registry.off("changed", onChange);
      notice.off("changed", onNotice);
    },
    roomChanged: () => nsp.emit("room", room()),
  };
}

function connect(socket: InstructorSocket, registry: SessionRegistry, log: Logger, notice: RoomNotice): void {
  let watched: Session | undefined;
  const limit = new RateLimit(20, 40);
  // Typing in a take-over comes a keystroke a message, as a student's does.
  const typing = new RateLimit(200, 400);
  const refuse = throttledRefusal((message) => socket.emit("failure", message));
  const allowed = () => limit.take() || (refuse("too many messages: slow down"), false);
  /** The live session a message names, or a refusal (and undefined). */
  const liveSession = (id: unknown): Session | undefined => {
    const parsed = SessionId.safeParse(id);
    if (!parsed.success) return void refuse(`invalid session id: ${firstIssue(parsed.error)}`);
    const session = registry.get(parsed.data);
    if (!session) return void refuse("no such live session");
    return session;
  };
  const failed = (what: string, session?: Session) => (error: unknown) => {
    log.error({ session: session?.id, err: String(error) }, `${what} failed`);
    refuse(`${what} failed; see the server log`);
  };

  const unwatch = () => {
    watched?.unwatch(socket.id);
    watched = undefined;
  };

  socket.on("watch", (id) => {
    if (!allowed()) return;
    const session = liveSession(id);
    if (!session) return;
    unwatch();
    watched = session;
    const watcher: Watcher = {
      id: socket.id,
      output: (data) => socket.emit("output", session.id, data),
      lagging: () => queuedPackets(socket) > WATCHER_MAX_QUEUED_PACKETS,
    };
    session.watch(watcher);
  });

  socket.on("unwatch", () => {
    if (!allowed()) return;
    unwatch();
  });

  socket.on("end", (id) => {
    if (!allowed()) return;
    const session = liveSession(id);
    if (!session) return;
    log.info({ session: session.id }, "session ended by an instructor");
    registry.end(session, END_BY_INSTRUCTOR, "instructor").catch(failed("ending the session", session));
  });

  socket.on("endAll", () => {
    if (!allowed()) return;
    log.info({ sessions: registry.live().length }, "every session ended by an instructor");
    registry.endAll(END_BY_INSTRUCTOR, "instructor").catch(failed("ending every session"));
  });

  socket.on("extend", (request) => {
    if (!allowed()) return;
    const parsed = ExtendRequest.safeParse(request);
    if (!parsed.success) return refuse(`invalid extension: ${firstIssue(parsed.error)}`);
    const { session: target, minutes } = parsed.data;
    const sessions = target === "all" ? registry.live() : [liveSession(target)].filter((s) => s !== undefined);
    if (target !== "all" && sessions.length === 0) return;
    log.info({ sessions: sessions.map((s) => s.id), minutes }, "sessions extended by an instructor");
    for (const session of sessions) registry.extend(session, minutes).catch(failed("extending the session", session));
  });

  socket.on("notice", (text) => {
    if (!allowed()) return;
    const parsed = NoticeText.safeParse(text);
    if (!parsed.success) return refuse(`invalid notice: ${firstIssue(parsed.error)}`);
    log.info({ notice: parsed.data }, parsed.data ? "notice to the room" : "notice taken down");
    notice.set(parsed.data).catch(failed("showing the notice"));
  });

  socket.on("lowerHand", (id) => {
    if (!allowed()) return;
    const session = liveSession(id);
    if (session) registry.raiseHand(session, false).catch(failed("lowering the hand", session));
  });

  socket.on("type", (id, data) => {
    if (!typing.take()) return refuse("typing too fast: slow down");
    const session = liveSession(id);
    if (!session) return;
    const parsed = Input.safeParse(data);
    if (!parsed.success) return refuse(`invalid input: ${firstIssue(parsed.error)}`);
    const typed = session.typeAsInstructor(parsed.data);
    if (typed === "refused") refuse(`${session.studentName ?? "this student"} has not let the instructor type (the switch on their page is off)`);
    else if (typed === "dropped") refuse("the program in that terminal is not reading its input: what you typed was dropped");
  });

  socket.on("steps", (id) => {
    if (!allowed()) return;
    const parsed = SessionId.safeParse(id);
    if (!parsed.success) return refuse(`invalid session id: ${firstIssue(parsed.error)}`);
    registry.steps(parsed.data).then(
      (steps) => (steps ? socket.emit("steps", parsed.data, steps) : refuse("no such session")),
      failed("reading the build steps"),
    );
  });

  const known = new Set(["watch", "unwatch", "end", "endAll", "extend", "notice", "lowerHand", "type", "steps"]);
  socket.onAny((event: unknown) => {
    if (typeof event === "string" && known.has(event)) return;
    if (allowed()) refuse(`unknown message "${String(event).slice(0, 40)}"`);
  });

  socket.on("disconnect", unwatch);
}
