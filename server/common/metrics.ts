// A small registry of metrics, written out in Prometheus's text exposition
// format (version 0.0.4): counters and histograms, each a family of series
// told apart by labels, and gauges read when scraped (a figure something else
// already knows, such as how many sessions are live). Any part
// of the server can register a family here (a warm pool its "ready" gauge)
// without knowing how /metrics is served. No dependency: the format is a few
// lines of text per series.
//
//   # HELP playground_sessions_started_total Sessions started.
//   # TYPE playground_sessions_started_total counter
//   playground_sessions_started_total 3

export type Labels = Record<string, string>;

export interface Sample {
  labels?: Labels;
  value: number;
}

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  name: string;
  help: string;
  kind: Kind;
  /** The family's lines without its HELP and TYPE, at scrape time. */
  lines(): Promise<string[]>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text escapes only backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function checkLabelNames(labels: Labels | undefined): void {
  for (const name of Object.keys(labels ?? {})) if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`invalid label name "${name}"`);
}

function formatLabels(labels: Labels | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return "";
  checkLabelNames(labels);
  return `{${entries.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`;
}

function line(name: string, labels: Labels | undefined, value: number): string {
  return `${name}${formatLabels(labels)} ${formatValue(value)}`;
}

/** Series of one family, keyed by their labels (in the order given). */
class Series<T> {
  private readonly byKey = new Map<string, { labels?: Labels; value: T }>();
  constructor(private readonly initial: () => T) {}
  get(labels?: Labels): T {
    const key = JSON.stringify(labels ?? {});
    let entry = this.byKey.get(key);
    if (!entry) {
      checkLabelNames(labels); // refused where the mistake is made, not at the next scrape
      this.byKey.set(key, (entry = { labels, value: this.initial() }));
    }
    return entry.value;
  }
  entries(): { labels?: Labels; value: T }[] {
    return [...this.byKey.values()];
  }
}

/** Only goes up (by a non-negative amount). */
export class Counter {
  private readonly series = new Series(() => ({ n: 0 }));
  constructor(readonly name: string) {}
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name} can only go up`);
    this.series.get(labels).n += by;
  }
  lines(): string[] {
    return this.series.entries().map((e) => line(this.name, e.labels, e.value.n));
  }
}

/** Observations counted into cumulative buckets (`le`: less than or equal), with their sum and count. */
export class Histogram {
  private readonly series = new Series(() => ({ buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
  readonly bounds: number[];
  constructor(
    readonly name: string,
    bounds: number[],
  ) {
    if (bounds.length === 0 || bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]))) {
      throw new Error(`histogram ${name}: bucket bounds must be finite and increasing`);
    }
    this.bounds = [...bounds];
  }
  observe(value: number, labels?: Labels): void {
    const s = this.series.get(labels);
    this.bounds.forEach((bound, i) => {
      if (value <= bound) s.buckets[i]++;
    });
    s.sum += value;
    s.count++;
  }
  lines(): string[] {
    return this.series.entries().flatMap(({ labels, value: s }) => [
      ...this.bounds.map((bound, i) => line(`${this.name}_bucket`, { ...labels, le: formatValue(bound) }, s.buckets[i])),
      line(`${this.name}_bucket`, { ...labels, le: "+Inf" }, s.count),
      line(`${this.name}_sum`, labels, s.sum),
      line(`${this.name}_count`, labels, s.count),
    ]);
  }
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly scrapeHooks: (() => Promise<void>)[] = [];

  /** Runs at each scrape before any family is read: gathers a reading that several gauges share. */
  beforeScrape(hook: () => Promise<void>): void {
    this.scrapeHooks.push(hook);
  }

  counter(name: string, help: string): Counter {
    const counter = new Counter(name);
    this.add({ name, help, kind: "counter", lines: async () => counter.lines() });
    return counter;
  }

  histogram(name: string, help: string, bounds: number[]): Histogram {
    const histogram = new Histogram(name, bounds);
    this.add({ name, help, kind: "histogram", lines: async () => histogram.lines() });
    return histogram;
  }

  /** A gauge read when scraped: `read` returns its series (one without labels for a single figure). */
  gaugeFrom(name: string, help: string, read: () => Sample[] | Promise<Sample[]>): void {
    this.add({ name, help, kind: "gauge", lines: async () => (await read()).map((s) => line(name, s.labels, s.value)) });
  }

  /** Every family, in the order registered, as Prometheus's text format. */
  async exposition(): Promise<string> {
    await Promise.all(this.scrapeHooks.map((hook) => hook()));
    const parts: string[] = [];
    for (const family of this.families.values()) {
      parts.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.kind}`, ...(await family.lines()));
    }
    return parts.join("\n") + "\n";
  }

  private add(family: Family): void {
    if (!METRIC_NAME.test(family.name)) throw new Error(`invalid metric name "${family.name}"`);
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} is registered already`);
    this.families.set(family.name, family);
  }
}

/** The content type of the text format, as Prometheus asks for it. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
