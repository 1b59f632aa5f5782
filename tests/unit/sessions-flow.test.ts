// The pieces of a session's relay that need no container: flow control's
// watermarks, output batching, and the reaper's rules.
import { describe, expect, it, vi } from "vitest";
import { FlowControl } from "../../server/sessions/flow-control.ts";
import { OutputBatcher } from "../../server/sessions/output-batcher.ts";
import { describeDuration, reapReason } from "../../server/sessions/reaper.ts";
import { Session } from "../../server/sessions/session.ts";

function pty() {
  const calls: string[] = [];
  return { calls, pause: () => calls.push("pause"), resume: () => calls.push("resume") };
}

describe("flow control", () => {
  it("pauses the pty when a reader is more than the high mark behind, and resumes once every reader is under the low mark", () => {
    const target = pty();
    const flow = new FlowControl(target, 100, 20);
    flow.add("a");
    flow.add("b");
    flow.sent("a", 60);
    flow.sent("b", 60);
    expect(target.calls).toEqual([]);
    flow.sent("a", 60);
    flow.sent("b", 60);
    expect(target.calls).toEqual(["pause"]);
    flow.acked("a", 120);
    expect(target.calls).toEqual(["pause"]); // b is still behind
    flow.acked("b", 90);
    expect(target.calls).toEqual(["pause"]); // 30 > low mark
    flow.acked("b", 10);
    expect(target.calls).toEqual(["pause", "resume"]);
  });

  it("lets a reader that leaves stop holding the pty back", () => {
    const target = pty();
    const flow = new FlowControl(target, 100, 20);
    flow.add("slow");
    flow.sent("slow", 500);
    expect(flow.isPaused).toBe(true);
    flow.remove("slow");
    expect(target.calls).toEqual(["pause", "resume"]);
  });

  it("gives no credit for acknowledging more than was sent", () => {
    const target = pty();
    const flow = new FlowControl(target, 100, 20);
    flow.add("liar");
    flow.acked("liar", 1_000_000);
    flow.sent("liar", 150);
    expect(flow.behind("liar")).toBe(150);
    expect(flow.isPaused).toBe(true);
  });
});

describe("output batching", () => {
  it("sends a chunk after a quiet spell at once, gathers the chunks that follow, and flushes at once past the size limit", () => {
    vi.useFakeTimers();
    try {
      const sent: string[] = [];
      const batcher = new OutputBatcher((d) => sent.push(d), 5, 8);
      batcher.push("a"); // a keystroke's echo: no delay
      expect(sent).toEqual(["a"]);
      batcher.push("bc");
      batcher.push("d");
      expect(sent).toEqual(["a"]);
      vi.advanceTimersByTime(5);
      expect(sent).toEqual(["a", "bcd"]);
      batcher.push("0123456789");
      expect(sent).toEqual(["a", "bcd", "0123456789"]);
      vi.advanceTimersByTime(50);
      batcher.push("e");
      expect(sent).toEqual(["a", "bcd", "0123456789", "e"]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("the reaper's rules", () => {
  const limits = { maxSessions: 50, graceMs: 300_000, idleMs: 1_800_000, lifetimeMs: 14_400_000 };
  const session = () => {
    const created = new Date();
    const s = new Session("abcdefgh1234", "hash", "alpine:latest", undefined, new Date(created.getTime() + limits.lifetimeMs), created);
    s.state = "running";
    return s;
  };

  it("ends a session after the grace period without a page, the idle period without input, or its lifetime", () => {
    const now = Date.now();
    const s = session();
    expect(reapReason(s, limits, now)).toBeUndefined();
    s.detachedSince = new Date(now - 299_000);
    expect(reapReason(s, limits, now)).toBeUndefined();
    s.detachedSince = new Date(now - 300_000);
    expect(reapReason(s, limits, now)).toEqual({ reason: "no browser was attached for 5 minutes", cause: "no-browser" });
    s.detachedSince = undefined;
    s.lastInputAt = new Date(now - 1_800_000);
    expect(reapReason(s, limits, now)).toEqual({ reason: "nothing was typed for 30 minutes", cause: "idle" });
    expect(reapReason(s, limits, s.createdAt.getTime() + 14_400_000)).toEqual({ reason: "the session reached its time limit of 4 hours", cause: "lifetime" });
  });

  it("ends an extended session at its new end, not at the room's lifetime", () => {
    const s = session();
    s.lastInputAt = new Date(s.createdAt.getTime() + 14_000_000);
    s.expiresAt = new Date(s.expiresAt.getTime() + 30 * 60_000);
    expect(reapReason(s, limits, s.createdAt.getTime() + 14_400_000)).toBeUndefined();
    expect(reapReason(s, limits, s.createdAt.getTime() + 16_200_000)).toEqual({ reason: "the session reached its time limit of 270 minutes", cause: "lifetime" });
  });

  it("says durations in words", () => {
    expect(describeDuration(1000)).toBe("1 second");
    expect(describeDuration(90_000)).toBe("90 seconds");
    expect(describeDuration(120_000)).toBe("2 minutes");
    expect(describeDuration(7_200_000)).toBe("2 hours");
  });
});
