// The replay's player, on a fake screen and a fake clock: output comes at its
// time (faster at a higher speed), long pauses are shortened, a seek back
// starts the screen over and writes everything up to that point, resizes are
// applied in order, and markers are where the recording put them.
import { describe, expect, it } from "vitest";
import { eventLine, headerLine, parseCast } from "../../server/common/asciicast.ts";
import { CastPlayer, IDLE_LIMIT_S, type PlayerClock } from "../../app/lib/cast-player.ts";

function fakeClock() {
  let now = 0;
  let timers: { at: number; run: () => void; id: number }[] = [];
  let ids = 0;
  const clock: PlayerClock = {
    now: () => now,
    later: (run, ms) => {
      const id = ++ids;
      timers.push({ at: now + ms, run, id });
      return id;
    },
    cancel: (id) => (timers = timers.filter((t) => t.id !== id)),
  };
  /** Lets `ms` pass, running the timers that fall due. */
  const pass = (ms: number) => {
    const end = now + ms;
    for (;;) {
      timers.sort((a, b) => a.at - b.at);
      const due = timers[0];
      if (!due || due.at > end) break;
      timers.shift();
      now = due.at;
      due.run();
    }
    now = end;
  };
  return { clock, pass };
}

function fakeScreen() {
  const log: string[] = [];
  let text = "";
  return {
    screen: {
      write: (data: string) => {
        text += data;
        log.push(`write ${JSON.stringify(data)}`);
      },
      reset: () => {
        text = "";
        log.push("reset");
      },
      resize: (cols: number, rows: number) => log.push(`resize ${cols}x${rows}`),
    },
    log,
    text: () => text,
  };
}

const cast = parseCast(
  headerLine({ version: 2, width: 80, height: 24 }) +
    eventLine(0.5, "o", "one ") +
    eventLine(1, "m", "How was this built? 2 steps") +
    eventLine(1.5, "o", "two ") +
    eventLine(2, "r", "100x30") +
    eventLine(602, "o", "after-a-long-pause ") + // ten minutes later: played 2 s later
    eventLine(603, "m", "step 2") +
    eventLine(603.5, "o", "end"),
);

describe("the replay's player", () => {
  it("plays output at its time, shortens long pauses, and applies resizes in order", () => {
    const { clock, pass } = fakeClock();
    const s = fakeScreen();
    const player = new CastPlayer(cast, s.screen, () => {}, clock);
    expect(player.duration).toBe(2 + IDLE_LIMIT_S + 1.5);
    expect(s.log).toEqual(["resize 80x24"]);
    player.play();
    pass(400);
    expect(s.text()).toBe("");
    pass(200);
    expect(s.text()).toBe("one ");
    pass(1400);
    expect(s.text()).toBe("one two ");
    expect(s.log.at(-1)).toBe("resize 100x30");
    pass(IDLE_LIMIT_S * 1000);
    expect(s.text()).toBe("one two after-a-long-pause ");
    pass(2000);
    expect(s.text()).toBe("one two after-a-long-pause end");
    expect(player.isPlaying).toBe(false);
    expect(player.position).toBe(player.duration);
  });

  it("plays faster at a higher speed, and stands still while paused", () => {
    const { clock, pass } = fakeClock();
    const s = fakeScreen();
    const player = new CastPlayer(cast, s.screen, () => {}, clock);
    player.setSpeed(4);
    player.play();
    pass(500); // 2 s of the recording
    expect(s.text()).toBe("one two ");
    player.pause();
    pass(60_000);
    expect(s.text()).toBe("one two ");
    expect(player.position).toBe(2);
  });

  it("seeks back by starting the screen over and writing everything up to there at once, and forward by playing the events between", () => {
    const { clock } = fakeClock();
    const s = fakeScreen();
    const positions: number[] = [];
    const player = new CastPlayer(cast, s.screen, (p) => positions.push(p), clock);
    player.seek(player.duration);
    expect(s.text()).toBe("one two after-a-long-pause end");
    s.log.length = 0;
    player.seek(1.6);
    expect(s.log).toEqual(["reset", "resize 80x24", 'write "one two "']);
    player.seek(3);
    expect(s.log.slice(3)).toEqual(["resize 100x30"]);
    player.seek(4.1);
    expect(s.text()).toBe("one two after-a-long-pause ");
    expect(positions).toEqual([player.duration, 1.6, 3, 4.1]);
  });

  it("lists the markers at their played time, to jump to", () => {
    const player = new CastPlayer(cast, fakeScreen().screen, () => {}, fakeClock().clock);
    expect(player.markers).toEqual([
      { time: 1, label: "How was this built? 2 steps" },
      { time: 2 + IDLE_LIMIT_S + 1, label: "step 2" },
    ]);
  });
});
