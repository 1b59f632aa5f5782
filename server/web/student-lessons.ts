// The lesson panel's messages on a student's socket: pick a lesson, open a
// step, check it now. Like every student message they are untrusted:
// validated, rate-limited, and they reach only the socket's own session.
import type { Logger } from "pino";
import type { Socket } from "socket.io";
import { z } from "zod";
import type { StudentClientEvents, StudentServerEvents } from "../common/protocol.ts";
import type { Classroom } from "../lessons/classroom.ts";
import { LESSON_ID } from "../lessons/format.ts";
import type { Session } from "../sessions/session.ts";

const LessonPick = z.string().regex(LESSON_ID).nullable();
const StepIndex = z.number().int().min(0).max(1000);

export const LESSON_EVENTS = ["lessonPick", "lessonStep", "lessonCheck"] as const;

export function lessonEvents(
  socket: Socket<StudentClientEvents, StudentServerEvents>,
  classroom: Classroom,
  session: () => Session | undefined,
  allowed: () => boolean,
  refuse: (message: string) => void,
  log: Logger,
): { sendState: () => void } {
  socket.emit("lessons", classroom.list(), classroom.fixed);
  const failed = (error: unknown) => refuse((error as Error).message);
  const running = (): Session | undefined => {
    const s = session();
    if (!s || s.state === "ended") refuse("start your session first");
    return s && s.state !== "ended" ? s : undefined;
  };

  socket.on("lessonPick", (id) => {
    if (!allowed()) return;
    const parsed = LessonPick.safeParse(id);
    if (!parsed.success) return refuse("invalid lesson");
    const s = running();
    if (s) classroom.pick(s, parsed.data).catch(failed);
  });
  socket.on("lessonStep", (index) => {
    if (!allowed()) return;
    const parsed = StepIndex.safeParse(index);
    if (!parsed.success) return refuse("invalid step");
    const s = running();
    if (s) classroom.open(s, parsed.data).catch(failed);
  });
  socket.on("lessonCheck", () => {
    if (!allowed()) return;
    const s = running();
    if (s) classroom.checkNow(s).catch(failed);
  });

  return {
    // The session's lesson, once it is known (read back from the record after a restart).
    sendState: () => {
      const s = session();
      if (!s) return;
      classroom.ensure(s).then(
        (progress) => socket.emit("lesson", progress?.state() ?? null),
        (error) => log.error({ session: s.id, err: String(error) }, "could not read the session's lesson"),
      );
    },
  };
}
