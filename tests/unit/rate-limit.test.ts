// The token buckets that keep one browser (or one address) from flooding the
// server: a burst passes, then the rate; time refills the bucket up to the
// burst, never beyond; refusals are told at most once a second. On a clock
// the test moves, so nothing here depends on how fast the machine is.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AddressLimits } from "../../server/web/address-limits.ts";
import { RateLimit, throttledRefusal } from "../../server/web/rate-limit.ts";

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2025-01-01T09:00:00Z"));
});
afterEach(() => {
  vi.useRealTimers();
});

const takeAll = (limit: { take(): boolean }, n: number) => Array.from({ length: n }, () => limit.take()).filter(Boolean).length;

describe("RateLimit", () => {
  it("lets the burst through at once, then refuses", () => {
    // The student's input limit: 400 at once, then 200 a second.
    const input = new RateLimit(200, 400);
    expect(takeAll(input, 1000)).toBe(400);
    expect(input.take()).toBe(false);
  });

  it("refills at its rate, up to the burst and no further", () => {
    const input = new RateLimit(200, 400);
    takeAll(input, 400);
    vi.advanceTimersByTime(100);
    expect(takeAll(input, 1000)).toBe(20);
    vi.advanceTimersByTime(60_000);
    expect(takeAll(input, 1000)).toBe(400);
  });

  it("tells whether a token is there without taking it", () => {
    const instructor = new RateLimit(20, 40);
    takeAll(instructor, 39);
    expect(instructor.available()).toBe(true);
    expect(instructor.available()).toBe(true);
    expect(instructor.take()).toBe(true);
    expect(instructor.available()).toBe(false);
    vi.advanceTimersByTime(50);
    expect(instructor.available()).toBe(true);
  });
});

describe("AddressLimits", () => {
  it("keeps one bucket per address: one address's flood leaves another's starts alone", () => {
    const starts = new AddressLimits(30 / 60, 8);
    expect(Array.from({ length: 20 }, () => starts.take("10.0.0.1")).filter(Boolean)).toHaveLength(8);
    expect(starts.available("10.0.0.1")).toBe(false);
    expect(starts.available("10.0.0.2")).toBe(true);
    expect(starts.take("10.0.0.2")).toBe(true);
    vi.advanceTimersByTime(2000);
    expect(starts.take("10.0.0.1")).toBe(true);
  });
});

describe("throttledRefusal", () => {
  it("tells a refusal at most once a second", () => {
    const told: string[] = [];
    const refuse = throttledRefusal((m) => told.push(m));
    for (let i = 0; i < 100; i++) refuse(`no ${i}`);
    expect(told).toEqual(["no 0"]);
    vi.advanceTimersByTime(999);
    refuse("still no");
    expect(told).toEqual(["no 0"]);
    vi.advanceTimersByTime(1);
    refuse("now told");
    expect(told).toEqual(["no 0", "now told"]);
  });
});
