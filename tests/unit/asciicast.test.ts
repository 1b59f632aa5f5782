// asciicast v2 as the recorder writes it and the replay reads it: a header
// line, then one event a line whatever the data holds, times to the
// microsecond; a last line cut short is left out, anything else broken is an
// error that names its line.
import { describe, expect, it } from "vitest";
import { CastError, eventLine, headerLine, parseCast, parseSize, sizeData } from "../../server/common/asciicast.ts";
import { buildStepsMarker, markerTitle } from "../../server/common/recording-markers.ts";

describe("asciicast v2", () => {
  it("writes a header and events that read back the same, one line each whatever the data holds", () => {
    const text =
      headerLine({ version: 2, width: 120, height: 40, timestamp: 1_700_000_000, title: "Ada · alpine:latest", env: { TERM: "xterm-256color" } }) +
      eventLine(0.1234567, "o", "line one\r\nline two\x1b[31m red\x1b[0m \u2028 é 😀\n") +
      eventLine(1.5, "i", "ls\r") +
      eventLine(2, "r", sizeData(100, 30)) +
      eventLine(2.25, "m", "a marker\nwith two lines");
    const lines = text.split("\n");
    expect(lines).toHaveLength(6); // five lines and the empty rest after the last newline
    expect(JSON.parse(lines[0])).toEqual({ version: 2, width: 120, height: 40, timestamp: 1_700_000_000, title: "Ada · alpine:latest", env: { TERM: "xterm-256color" } });
    expect(parseCast(text).events).toEqual([
      [0.123457, "o", "line one\r\nline two\x1b[31m red\x1b[0m \u2028 é 😀\n"],
      [1.5, "i", "ls\r"],
      [2, "r", "100x30"],
      [2.25, "m", "a marker\nwith two lines"],
    ]);
    expect(parseSize("100x30")).toEqual({ cols: 100, rows: 30 });
    expect(parseSize("100 x 30")).toBeUndefined();
  });

  it("leaves out a last line cut short, skips codes it does not know, and names the line that is broken", () => {
    const header = headerLine({ version: 2, width: 80, height: 24 });
    const whole = header + eventLine(1, "o", "kept") + '[2, "x", "an exit event of v3"]\n';
    expect(parseCast(`${whole}[3, "o", "cut sh`).events).toEqual([[1, "o", "kept"]]);
    expect(() => parseCast(`${header}not json\n${eventLine(1, "o", "x")}`)).toThrow(/line 2: not JSON/);
    expect(() => parseCast(`${header}[1, "o"]\n`)).toThrow(/line 2: an event is \[time, code, data\]/);
    expect(() => parseCast('{"version": 1, "width": 80, "height": 24}\n')).toThrow(CastError);
    expect(() => parseCast('{"version": 2, "width": 0, "height": 24}\n')).toThrow(/width and a height/);
    expect(() => parseCast("")).toThrow(/header is not JSON/);
  });

  it("labels the build marker with every step, one a line, under a title line", () => {
    const label = buildStepsMarker([
      { title: "Make the cgroup", command: "mkdir /sys/fs/cgroup/x", ms: 0.25 },
      { title: "Start the shell", command: "exec sh\n-l", ms: 120.4 },
      { title: "No time", command: "true" },
    ]);
    expect(label.split("\n")).toEqual([
      "How was this built? 3 steps, 121 ms",
      "1. Make the cgroup (0.25 ms): mkdir /sys/fs/cgroup/x",
      "2. Start the shell (120 ms): exec sh -l",
      "3. No time: true",
    ]);
    expect(markerTitle(label)).toBe("How was this built? 3 steps, 121 ms");
    expect(markerTitle("step 2")).toBe("step 2");
  });
});
