// The instructors' socket.io namespace ("/instructor"). Only a socket that
// shows the instructor's (or the admin's) token in its handshake gets in; the
// students' namespace has no way to reach anything here. An instructor gets
// the session list (live ones with CPU, memory and pids, then the ended ones)
// every couple of seconds and whenever it changes, can watch one student's
// terminal read-only, and can end a session.
import type { Logger } from "pino";
import type { Namespace, Server, Socket } from "socket.io";
import type { SessionRegistry } from "../sessions/registry.ts";
import type { Session, Watcher } from "../sessions/session.ts";
import { type InstructorClientEvents, type InstructorServerEvents, type RoomInfo, SessionId } from "../common/protocol.ts";
import { queuedPackets } from "./backlog.ts";
import { RateLimit, throttledRefusal } from "./rate-limit.ts";
import { roleOf, type Tokens } from "./tokens.ts";
import { firstIssue } from "../common/validation.ts";

type InstructorSocket = Socket<InstructorClientEvents, InstructorServerEvents>;

/** How often the list is pushed while anyone is looking (usage figures change constantly). */
const PUSH_EVERY_MS = 2000;
/** A burst of changes (a reset ending 50 sessions) becomes one push. */
const CHANGE_DEBOUNCE_MS = 100;
/** Output messages an instructor's socket may have waiting before its view is skipped and later redrawn. */
const WATCHER_MAX_QUEUED_PACKETS = 16;

export const END_BY_INSTRUCTOR = "ended by the instructor";

export function instructorNamespace(
  io: Server,
  registry: SessionRegistry,
  tokens: Tokens,
  log: Logger,
  room: () => RoomInfo,
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
  const push = () => {
    if (nsp.sockets.size === 0) return;
    if (pushing) {
      again = true;
      return;
    }
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

  nsp.on("connection", (socket) => {
    connect(socket, registry, log);
    socket.emit("room", room());
    push();
  });

  return {
    nsp: nsp as unknown as Namespace,
    stop() {
      clearInterval(timer);
      if (debounce) clearTimeout(debounce);
      registry.off("changed", onChange);
    },
    roomChanged: () => nsp.emit("room", room()),
  };
}

function connect(socket: InstructorSocket, registry: SessionRegistry, log: Logger): void {
  let watched: Session | undefined;
  const limit = new RateLimit(20, 40);
  const refuse = throttledRefusal((message) => socket.emit("failure", message));
  const allowed = () => limit.take() || (refuse("too many messages: slow down"), false);

  const unwatch = () => {
    watched?.unwatch(socket.id);
    watched = undefined;
  };

  socket.on("watch", (id) => {
    if (!allowed()) return;
    const parsed = SessionId.safeParse(id);
    if (!parsed.success) return refuse(`invalid session id: ${firstIssue(parsed.error)}`);
    const session = registry.get(parsed.data);
    if (!session) return refuse("no such live session");
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
    const parsed = SessionId.safeParse(id);
    if (!parsed.success) return refuse(`invalid session id: ${firstIssue(parsed.error)}`);
    const session = registry.get(parsed.data);
    if (!session) return refuse("no such live session");
    log.info({ session: session.id }, "session ended by an instructor");
    registry.end(session, END_BY_INSTRUCTOR, "instructor").catch((error) => {
      log.error({ session: session.id, err: String(error) }, "ending a session failed");
      refuse("the session could not be ended cleanly; see the server log");
    });
  });

  const known = new Set(["watch", "unwatch", "end"]);
  socket.onAny((event: unknown) => {
    if (typeof event === "string" && known.has(event)) return;
    if (allowed()) refuse(`unknown message "${String(event).slice(0, 40)}"`);
  });

  socket.on("disconnect", unwatch);
}
