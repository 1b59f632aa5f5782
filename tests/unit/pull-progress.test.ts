// How `playground pull` shows progress: plain lines off a terminal (one per
// state change, nothing else), bars redrawn in place on one, sizes as Docker
// prints them.
import { describe, expect, test } from "vitest";
import { formatLine, humanSize, PlainView, TerminalView } from "../../server/engine/image/progress.ts";

function sink(columns?: number) {
  const out = { text: "", columns, write(chunk: string) { out.text += chunk; return true; } };
  return out as typeof out & NodeJS.WritableStream;
}

describe("plain lines", () => {
  test("one line per state change, byte counts ignored", () => {
    const out = sink();
    const view = new PlainView(out);
    view.update({ id: "aaaaaaaaaaaa", state: "waiting", current: 0, total: 100 });
    view.update({ id: "aaaaaaaaaaaa", state: "downloading", current: 0, total: 100 });
    view.update({ id: "aaaaaaaaaaaa", state: "downloading", current: 50, total: 100 });
    view.update({ id: "bbbbbbbbbbbb", state: "exists", current: 10, total: 10 });
    view.update({ id: "aaaaaaaaaaaa", state: "done", current: 100, total: 100 });
    expect(out.text).toBe(
      "aaaaaaaaaaaa: Waiting\naaaaaaaaaaaa: Downloading\nbbbbbbbbbbbb: Already exists\naaaaaaaaaaaa: Pull complete\n",
    );
    expect(out.text).not.toContain("\x1b");
  });
});

describe("terminal bars", () => {
  test("a new layer gets a new line; an update moves up to its line, rewrites it and comes back", () => {
    const out = sink(200);
    const view = new TerminalView(out);
    view.update({ id: "aaaaaaaaaaaa", state: "waiting", current: 0, total: 100 });
    view.update({ id: "bbbbbbbbbbbb", state: "waiting", current: 0, total: 100 });
    out.text = "";
    view.update({ id: "aaaaaaaaaaaa", state: "downloading", current: 50, total: 100 });
    expect(out.text).toBe(`\x1b[2A\r\x1b[2K${formatLine({ id: "aaaaaaaaaaaa", state: "downloading", current: 50, total: 100 })}\x1b[2B\r`);
  });

  test("lines are cut to the terminal's width, so they never wrap", () => {
    const out = sink(30);
    new TerminalView(out).update({ id: "aaaaaaaaaaaa", state: "downloading", current: 1, total: 2 });
    expect(out.text).toBe(`${formatLine({ id: "aaaaaaaaaaaa", state: "downloading", current: 1, total: 2 }).slice(0, 29)}\n`);
  });

  test("the bar", () => {
    expect(formatLine({ id: "abc", state: "downloading", current: 0, total: 1000 })).toBe(`abc: Downloading [>${" ".repeat(49)}]  0B/1kB`);
    expect(formatLine({ id: "abc", state: "extracting", current: 500, total: 1000 })).toBe(`abc: Extracting [${"=".repeat(25)}>${" ".repeat(24)}]  500B/1kB`);
    expect(formatLine({ id: "abc", state: "downloading", current: 1000, total: 1000 })).toBe(`abc: Downloading [${"=".repeat(50)}]  1kB/1kB`);
    expect(formatLine({ id: "abc", state: "done", current: 1000, total: 1000 })).toBe("abc: Pull complete");
  });
});

test("sizes: decimal units, three significant digits", () => {
  expect(humanSize(0)).toBe("0B");
  expect(humanSize(999)).toBe("999B");
  expect(humanSize(3_624_000)).toBe("3.62MB");
  expect(humanSize(125_400_000)).toBe("125MB");
  expect(humanSize(999_999)).toBe("1MB");
  expect(humanSize(2_500_000_000)).toBe("2.5GB");
});
