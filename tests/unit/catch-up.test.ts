// The arithmetic of a reader that was away (a recording across a server
// restart): which bytes of the shim's ring it lacks, what is lost, where text
// may be cut; and the shim's terminal giving every reader each chunk's place
// in all the program wrote, a catch-up answered in order with the output that
// follows it. The shim is played by frames written into its connection.
import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { ShimConnection } from "../../server/engine/process/shim-connection.ts";
import { catchUp, incompleteUtf8Tail } from "../../server/runtime/catch-up.ts";
import { ShimTerminal } from "../../server/runtime/shim-terminal.ts";

describe("catching up", () => {
  it("takes from the ring what the reader lacks, and counts what the ring no longer holds", () => {
    const ring = Buffer.from("0123456789"); // bytes 90..99 of 100
    expect(catchUp(95, 100, ring)).toEqual({ bytes: Buffer.from("56789"), lost: 0 });
    expect(catchUp(90, 100, ring)).toEqual({ bytes: ring, lost: 0 });
    expect(catchUp(70, 100, ring)).toEqual({ bytes: ring, lost: 20 });
    expect(catchUp(100, 100, ring)).toEqual({ bytes: Buffer.alloc(0), lost: 0 });
    expect(catchUp(0, 0, Buffer.alloc(0))).toEqual({ bytes: Buffer.alloc(0), lost: 0 });
  });

  it("holds back only the start of a character not finished yet", () => {
    const e = Buffer.from("é"); // 2 bytes
    const smile = Buffer.from("😀"); // 4 bytes
    expect(incompleteUtf8Tail(Buffer.from("plain"))).toBe(0);
    expect(incompleteUtf8Tail(Buffer.concat([Buffer.from("a"), e]))).toBe(0);
    expect(incompleteUtf8Tail(Buffer.concat([Buffer.from("a"), e.subarray(0, 1)]))).toBe(1);
    expect(incompleteUtf8Tail(smile.subarray(0, 3))).toBe(3);
    expect(incompleteUtf8Tail(smile.subarray(0, 1))).toBe(1);
    expect(incompleteUtf8Tail(smile)).toBe(0);
    // Not a character's start at all: the program's bytes, not held.
    expect(incompleteUtf8Tail(Buffer.from([0x61, 0x80, 0x80, 0x80]))).toBe(0);
    expect(incompleteUtf8Tail(Buffer.from([0x61, 0xff]))).toBe(0);
  });
});

/** A shim connection whose shim is the test: frames go in with `frames`, what the terminal asks comes out in `asked`. */
function shim(streamsFromStart: boolean) {
  const asked: string[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      asked.push(String.fromCharCode(chunk[0]));
      done();
    },
  });
  const connection = new ShimConnection(stream, { streamsFromStart });
  const frame = (type: string, payload: Buffer | string) => {
    const body = Buffer.from(payload);
    const head = Buffer.alloc(5);
    head.write(type, 0, "latin1");
    head.writeUInt32BE(body.length, 1);
    return Buffer.concat([head, body]);
  };
  return {
    terminal: new ShimTerminal(connection),
    asked,
    /** Frames delivered together, in one chunk of the stream. */
    frames: (...frames: Buffer[]) => stream.push(Buffer.concat(frames)),
    output: (data: Buffer | string) => frame("O", data),
    replay: (total: number, ring: Buffer | string) => frame("Y", Buffer.concat([Buffer.from(`${total}\n`), Buffer.from(ring)])),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("the shim's terminal", () => {
  it("gives every reader the same text, a split character whole, and each chunk's end in bytes", async () => {
    const s = shim(true);
    const a: [string, number | undefined][] = [];
    const b: string[] = [];
    s.terminal.onData((text, end) => a.push([text, end]));
    s.terminal.onData((text) => b.push(text));
    const e = Buffer.from("é");
    s.frames(s.output(Buffer.concat([Buffer.from("caf"), e.subarray(0, 1)])));
    await tick();
    s.frames(s.output(Buffer.concat([e.subarray(1), Buffer.from(" ok")])));
    await tick();
    expect(a).toEqual([
      ["caf", 3],
      ["é ok", 8],
    ]);
    expect(b).toEqual(["caf", "é ok"]);
  });

  it("after a restart, answers a catch-up from the ring before the output that follows it, and places that output", async () => {
    const s = shim(false); // a server that connects to a running shim: where output stands is not known yet
    const seen: [string, number | undefined][] = [];
    s.terminal.onData((text, end) => seen.push([text, end]));
    const answers: [string, number, number][] = [];
    s.terminal.catchUp(95, (text, end, lost) => {
      answers.push([text, end, lost]);
      seen.push([`<caught up ${text}>`, end]);
    });
    expect(s.asked).toEqual(["B"]);
    // The ring holds bytes 90..99; output after the replay frame starts at 100.
    s.frames(s.replay(100, "0123456789"), s.output("next"));
    await tick();
    expect(answers).toEqual([["56789", 100, 0]]);
    expect(seen).toEqual([
      ["<caught up 56789>", 100],
      ["next", 104],
    ]);
  });

  it("says how much the ring no longer holds, and keeps a character still being written for the output that completes it", async () => {
    const s = shim(false);
    const seen: [string, number | undefined][] = [];
    s.terminal.onData((text, end) => seen.push([text, end]));
    const smile = Buffer.from("😀");
    const answers: [string, number, number][] = [];
    s.terminal.catchUp(10, (text, end, lost) => answers.push([text, end, lost]));
    // Bytes 20..29 held: "abcdefg" and the first 3 bytes of a 4-byte character.
    s.frames(s.replay(30, Buffer.concat([Buffer.from("abcdefg"), smile.subarray(0, 3)])), s.output(Buffer.concat([smile.subarray(3), Buffer.from("!")])));
    await tick();
    expect(answers).toEqual([["abcdefg", 27, 10]]);
    expect(seen).toEqual([["😀!", 32]]);
  });

  it("answers replays and catch-ups in the order they were asked, and a screen replay with the whole ring", async () => {
    const s = shim(false);
    const screen = s.terminal.replay();
    let caughtUp: string | undefined;
    s.terminal.catchUp(3, (text) => (caughtUp = text));
    s.frames(s.replay(5, "hello"), s.replay(6, "hello!"));
    await tick();
    expect(await screen).toBe("hello");
    expect(caughtUp).toBe("lo!");
  });
});
