// The metrics registry's text format, read back by a strict parser as a
// Prometheus scraper would: label values escaped, histograms cumulative,
// gauges read at scrape time, and mistakes refused when they are made.
import { describe, expect, it } from "vitest";
import { escapeLabelValue, MetricsRegistry } from "../../server/common/metrics.ts";
import { parsePrometheusText, sampleValue } from "../fixtures/prometheus.ts";

describe("the metrics registry", () => {
  it("writes counters with HELP and TYPE, one line per label set", async () => {
    const m = new MetricsRegistry();
    const ended = m.counter("x_ended_total", "Sessions ended, by reason.");
    ended.inc({ reason: "idle" });
    ended.inc({ reason: "idle" });
    ended.inc({ reason: "exited" }, 3);
    expect(await m.exposition()).toBe(
      ["# HELP x_ended_total Sessions ended, by reason.", "# TYPE x_ended_total counter", 'x_ended_total{reason="idle"} 2', 'x_ended_total{reason="exited"} 3', ""].join("\n"),
    );
    expect(() => ended.inc({}, -1)).toThrow(/can only go up/);
  });

  it("escapes label values so that any student name reads back as it was", async () => {
    expect(escapeLabelValue('a "b" \\ c\nd')).toBe('a \\"b\\" \\\\ c\\nd');
    const m = new MetricsRegistry();
    const names = ['Ada "the first" Lovelace', "back\\slash", "two\nlines", "Zoë O'Brien", "}{,= "];
    m.gaugeFrom("x_memory_bytes", "Memory,\nper session \\ student.", () => names.map((student, i) => ({ labels: { session: `s${i}`, student }, value: i * 1024 })));
    const families = parsePrometheusText(await m.exposition());
    const family = families.get("x_memory_bytes")!;
    expect(family.type).toBe("gauge");
    expect(family.help).toBe("Memory,\nper session \\ student.");
    expect(family.samples.map((s) => s.labels.student)).toEqual(names);
    expect(sampleValue(families, "x_memory_bytes", { student: "two\nlines" })).toBe(2048);
  });

  it("counts histogram observations into cumulative buckets, with +Inf, sum and count", async () => {
    const m = new MetricsRegistry();
    const h = m.histogram("x_start_seconds", "Start latency.", [0.5, 1, 5]);
    for (const v of [0.2, 0.5, 0.7, 3, 60]) h.observe(v);
    const families = parsePrometheusText(await m.exposition());
    const bucket = (le: string) => sampleValue(families, "x_start_seconds_bucket", { le });
    expect([bucket("0.5"), bucket("1"), bucket("5"), bucket("+Inf")]).toEqual([2, 3, 4, 5]);
    expect(sampleValue(families, "x_start_seconds_count")).toBe(5);
    expect(sampleValue(families, "x_start_seconds_sum")).toBeCloseTo(64.4);
    expect(() => m.histogram("x_bad", "Bad.", [1, 1])).toThrow(/increasing/);
  });

  it("reads gauges when scraped, after the shared readings are taken", async () => {
    const m = new MetricsRegistry();
    let live = 1;
    let reading = 0;
    m.beforeScrape(async () => {
      reading = live * 10;
    });
    m.gaugeFrom("x_live", "Live sessions.", () => [{ value: live }]);
    m.gaugeFrom("x_reading", "A shared reading.", async () => [{ value: reading }]);
    expect(sampleValue(parsePrometheusText(await m.exposition()), "x_live")).toBe(1);
    live = 4;
    const families = parsePrometheusText(await m.exposition());
    expect(sampleValue(families, "x_live")).toBe(4);
    expect(sampleValue(families, "x_reading")).toBe(40);
  });

  it("refuses a name twice, and names the format does not allow", () => {
    const m = new MetricsRegistry();
    m.counter("x_total", "Things.");
    expect(() => m.counter("x_total", "Again.")).toThrow(/registered already/);
    expect(() => m.counter("x-total", "Dash.")).toThrow(/invalid metric name/);
    expect(() => m.counter("y_total", "Things.").inc({ "bad-label": "v" })).toThrow(/invalid label name/);
    m.gaugeFrom("z", "Read at scrape time.", () => [{ labels: { __reserved: "v" }, value: 1 }]);
    return expect(m.exposition()).rejects.toThrow(/invalid label name/);
  });
});

describe("the tests' Prometheus parser", () => {
  it("refuses what a scraper would refuse", () => {
    expect(() => parsePrometheusText("x_total 1\n")).toThrow(/no TYPE line/);
    expect(() => parsePrometheusText("# TYPE x counter\nx{a=\"b} 1\n")).toThrow(/unterminated|bad label/);
    expect(() => parsePrometheusText("# TYPE x counter\nx one\n")).toThrow(/not a number/);
    expect(() => parsePrometheusText("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")).toThrow(/cumulative/);
    expect(() => parsePrometheusText("# TYPE x gauge\nx 1")).toThrow(/line feed/);
  });
});
