// The server's metrics in the Prometheus text format: a small registry of counters, gauges and histograms with
// labels, made from the core's table (`durable_ws_core::server::metrics`, through the wasm build), so that the
// Node.js server exposes the Rust server's names, kinds, help texts, labels and buckets, and one dashboard reads
// either. No dependency: the text exposition format 0.0.4 is a few lines.
import type { WebSocket } from "ws";
import { KNOWN_SERIES, METRIC_LABELS, METRIC_SPECS, type MetricSpec } from "./core";

/** The `Content-Type` of `DurableServer.metrics()`'s text (the Prometheus text exposition format 0.0.4). */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** @internal A counter's or a gauge's value in one series. */
export class Value {
  value = 0;
  /** Labelled series appear in a scrape once recorded (label-less ones always). */
  recorded = false;

  inc(n = 1) {
    this.value += n;
    this.recorded = true;
  }

  dec(n = 1) {
    this.value -= n;
    this.recorded = true;
  }

  set(value: number) {
    this.value = value;
    this.recorded = true;
  }
}

/** @internal A histogram's observations in one series: a count per bucket (the last one `+Inf`), sum and count. */
export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  recorded = false;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number) {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
    this.recorded = true;
  }
}

/** @internal One metric: its series by label values. */
export class Family<S extends Value | Histogram> {
  private readonly series = new Map<string, { values: readonly string[]; series: S }>();

  constructor(
    readonly spec: MetricSpec,
    private readonly make: () => S,
  ) {
    if (spec.labels.length === 0) this.series.set("", { values: [], series: make() });
  }

  /** The series of these label values (one per label, in the metric's order), made on first use. */
  with(...values: string[]): S {
    const key = values.join("\u0000");
    let entry = this.series.get(key);
    if (!entry) {
      if (values.length !== this.spec.labels.length) {
        throw new RangeError(`${this.spec.name}: ${this.spec.labels.length} label values expected, got ${values.length}`);
      }
      entry = { values, series: this.make() };
      this.series.set(key, entry);
    }
    return entry.series;
  }

  /** @internal Appends the metric's text. */
  render(out: string[]) {
    const { name, kind, help, labels } = this.spec;
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${kind}`);
    for (const { values, series } of this.series.values()) {
      if (values.length > 0 && !series.recorded) continue;
      const pairs = labels.map((label, i) => `${label}="${escapeLabel(values[i]!)}"`);
      if (series instanceof Histogram) {
        let cumulative = 0;
        series.bounds.forEach((bound, i) => {
          cumulative += series.counts[i]!;
          out.push(`${name}_bucket{${[...pairs, `le="${number(bound)}"`].join(",")}} ${number(cumulative)}`);
        });
        out.push(`${name}_bucket{${[...pairs, 'le="+Inf"'].join(",")}} ${number(series.count)}`);
        const set = pairs.length > 0 ? `{${pairs.join(",")}}` : "";
        out.push(`${name}_sum${set} ${number(series.sum)}`, `${name}_count${set} ${number(series.count)}`);
      } else {
        out.push(`${name}${pairs.length > 0 ? `{${pairs.join(",")}}` : ""} ${number(series.value)}`);
      }
    }
  }
}

function number(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/**
 * @internal A registry of metrics made from `specs` (the core's table), rendered in the Prometheus text format in
 * the table's order. Label-less series are there from the start (at 0); labelled ones once recorded.
 */
export class Registry {
  private readonly families = new Map<string, Family<Value | Histogram>>();
  private readonly collectors: Array<() => void> = [];

  constructor(specs: readonly MetricSpec[]) {
    for (const spec of specs) {
      const make = spec.kind === "histogram" ? () => new Histogram(spec.buckets) : () => new Value();
      this.families.set(spec.name, new Family<Value | Histogram>(spec, make));
    }
  }

  private family(name: string, kind: MetricSpec["kind"]): Family<Value | Histogram> {
    const family = this.families.get(name);
    if (!family) throw new RangeError(`no metric ${name}`);
    if (family.spec.kind !== kind) throw new TypeError(`${name} is a ${family.spec.kind}, not a ${kind}`);
    return family;
  }

  counter(name: string): Family<Value> {
    return this.family(name, "counter") as Family<Value>;
  }

  gauge(name: string): Family<Value> {
    return this.family(name, "gauge") as Family<Value>;
  }

  histogram(name: string): Family<Histogram> {
    return this.family(name, "histogram") as Family<Histogram>;
  }

  /** Runs `collect` before every scrape (gauges read at that moment). */
  onCollect(collect: () => void) {
    this.collectors.push(collect);
  }

  /** Every metric in the text exposition format. */
  render(): string {
    for (const collect of this.collectors) collect();
    const out: string[] = [];
    for (const family of this.families.values()) family.render(out);
    return `${out.join("\n")}\n`;
  }
}

/** Payload bytes of a message (a string counts in UTF-8, as the Rust server counts it). */
export function byteLength(data: unknown): number {
  if (typeof data === "string") return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  if (Array.isArray(data)) return data.reduce((sum: number, part) => sum + byteLength(part), 0);
  return 0;
}

/** The close code `ws` sends for an error it found in what the peer sent. */
function errorCode(error: unknown): number {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") return 1009;
  if (code === "WS_ERR_INVALID_UTF8") return 1007;
  return 1002;
}

/** @internal One open WebSocket, counted in `connections_active` until it closes, then its lifetime by close code. */
export interface OpenConnection {
  /** The close code the server decided on (first one wins), else the peer's. */
  code: number | undefined;
}

/**
 * @internal What the server records, with the Rust server's meaning of each metric (crates/server/src/metrics.rs,
 * stats.rs): the handles of the hot paths, resolved once.
 */
export class ServerMetrics {
  readonly registry: Registry;
  readonly messagesIn: Value;
  readonly messagesOut: Value;
  readonly bytesIn: Value;
  readonly bytesOut: Value;
  readonly replayed: Value;
  readonly duplicates: Value;
  readonly unconfirmedAtEnd: Value;
  readonly heartbeatTimeouts: Value;
  readonly protocolErrors: Value;
  readonly ackDelay: Histogram;
  private readonly handshakes: Family<Value>;
  private readonly limits: Family<Value>;
  private readonly ended: Family<Value>;
  private readonly active: Family<Value>;
  private readonly durations: Family<Histogram>;

  constructor() {
    const registry = (this.registry = new Registry(METRIC_SPECS.filter((spec) => !spec.storeOnly)));
    const { direction } = METRIC_LABELS;
    const messages = registry.counter("durable_ws_messages_total");
    const bytes = registry.counter("durable_ws_message_bytes_total");
    this.messagesIn = messages.with(direction.IN);
    this.messagesOut = messages.with(direction.OUT);
    this.bytesIn = bytes.with(direction.IN);
    this.bytesOut = bytes.with(direction.OUT);
    this.replayed = registry.counter("durable_ws_replayed_messages_total").with();
    this.duplicates = registry.counter("durable_ws_duplicate_messages_total").with();
    this.unconfirmedAtEnd = registry.counter("durable_ws_unconfirmed_at_end_total").with();
    this.heartbeatTimeouts = registry.counter("durable_ws_heartbeat_timeouts_total").with();
    this.protocolErrors = registry.counter("durable_ws_protocol_errors_total").with();
    this.ackDelay = registry.histogram("durable_ws_ack_delay_seconds").with();
    this.handshakes = registry.counter("durable_ws_handshakes_total");
    this.limits = registry.counter("durable_ws_limit_refusals_total");
    this.ended = registry.counter("durable_ws_sessions_ended_total");
    this.active = registry.gauge("durable_ws_connections_active");
    this.durations = registry.histogram("durable_ws_connection_duration_seconds");
    // A dashboard's queries find these before the first event.
    for (const { name, values } of KNOWN_SERIES) {
      const spec = METRIC_SPECS.find((s) => s.name === name);
      if (spec?.kind === "counter") registry.counter(name).with(...values).inc(0);
      else if (spec?.kind === "gauge") registry.gauge(name).with(...values).inc(0);
    }
  }

  /** Reads the session gauges at every scrape. */
  gauges(read: () => { sessions: number; bufferedMessages: number; bufferedBytes: number }) {
    const sessions = this.registry.gauge("durable_ws_sessions_active").with();
    const messages = this.registry.gauge("durable_ws_replay_buffer_messages").with();
    const bytes = this.registry.gauge("durable_ws_replay_buffer_bytes").with();
    this.registry.onCollect(() => {
      const now = read();
      sessions.set(now.sessions);
      messages.set(now.bufferedMessages);
      bytes.set(now.bufferedBytes);
    });
  }

  /** Application messages received (`payloads`: as the core delivered them). */
  received(payloads: ReadonlyArray<string | Uint8Array>) {
    this.messagesIn.inc(payloads.length);
    let bytes = 0;
    for (const payload of payloads) bytes += typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
    this.bytesIn.inc(bytes);
  }

  /** `count` application messages of `bytes` payload bytes each went out. */
  sent(bytes: number, count = 1) {
    this.messagesOut.inc(count);
    this.bytesOut.inc(bytes * count);
  }

  /** A durable session opened with WELCOME `status` (`foreign`: the one asked for is another identity's). */
  welcome(status: string, foreign: boolean) {
    const labels = (foreign ? METRIC_LABELS.foreign : METRIC_LABELS.welcome)[status];
    if (labels) this.handshakes.with(...labels).inc();
  }

  /** A handshake refused (`reason`: a `METRIC_LABELS.handshake` value). */
  refused(reason: string) {
    this.handshakes.with(METRIC_LABELS.handshake.REFUSED, reason).inc();
  }

  /** The core refused a session with close reason `reason`: the handshake and the limit it hit. */
  refusedSession(reason: string) {
    const labels = METRIC_LABELS.refused[reason];
    if (!labels) return;
    this.refused(labels[0]);
    this.limit(labels[1]);
  }

  /** A limit was hit (a `METRIC_LABELS.limit` value). */
  limit(which: string) {
    this.limits.with(which).inc();
  }

  /** A session ended (`reason`: the core's end reason, as this package names it). */
  sessionEnded(reason: string, unconfirmed: number) {
    this.ended.with(METRIC_LABELS.ended[reason] ?? reason).inc();
    if (reason !== "moved") this.unconfirmedAtEnd.inc(unconfirmed);
  }

  /**
   * Counts `ws` as open in `mode` (a `METRIC_LABELS.mode` value) until it closes; then its lifetime goes into
   * `connection_duration_seconds` under the close code the server decided on (`open.code`, set where it closes or
   * when `ws` closes it for an error of the peer's), else the peer's, 1006 without a close frame.
   */
  open(ws: WebSocket, mode: string): OpenConnection {
    const opened = performance.now();
    const active = this.active.with(mode);
    active.inc();
    const open: OpenConnection = { code: undefined };
    ws.on("error", (error) => {
      open.code ??= errorCode(error);
    });
    ws.once("close", (peer: number) => {
      active.dec();
      const code = open.code ?? (peer === 1005 ? 1006 : peer);
      this.durations.with(String(code)).observe((performance.now() - opened) / 1000);
    });
    return open;
  }

  /** What `ws` found wrong in what the peer sent (it closes the connection itself): a protocol error. */
  wsError(error: unknown) {
    this.protocolErrors.inc();
    if (errorCode(error) === 1009) this.limit(METRIC_LABELS.limit.MESSAGE_SIZE);
  }

  /** The server closes a connection with `code`: 1002, 1007 and 1009 are protocol errors (as the Rust server counts them). */
  closing(open: OpenConnection, code: number): boolean {
    open.code ??= code;
    if (code !== 1002 && code !== 1007 && code !== 1009) return false;
    this.protocolErrors.inc();
    if (code === 1009) this.limit(METRIC_LABELS.limit.MESSAGE_SIZE);
    return true;
  }

  /** Every metric, as text. */
  render(): string {
    return this.registry.render();
  }
}

/**
 * @internal When a session's own messages were first transmitted, until the client's acknowledgement covers them
 * (`durable_ws_ack_delay_seconds`), as the Rust server's `AckClock`: after each pass that wrote frames, one sample —
 * the newest message ever transmitted and the time — if it is newer than every sample before; an acknowledgement up to
 * `seq` observes every sample it covers. At most `MAX` samples wait; beyond, the oldest go unmeasured.
 */
export class AckClock {
  static readonly MAX = 256;
  private readonly seqs: number[] = [];
  private readonly times: number[] = [];
  /** The newest message sampled so far (samples already acknowledged included). */
  private through = 0;

  /** Own messages up to `seq` are on the wire now (ms: `performance.now()`). */
  sent(seq: number, now: number) {
    if (seq <= this.through) return;
    this.through = seq;
    if (this.seqs.length === AckClock.MAX) {
      this.seqs.shift();
      this.times.shift();
    }
    this.seqs.push(seq);
    this.times.push(now);
  }

  /** The client confirmed everything up to `seq`. */
  acked(seq: number, now: number, histogram: Histogram) {
    let n = 0;
    while (n < this.seqs.length && this.seqs[n]! <= seq) {
      histogram.observe(Math.max(0, now - this.times[n]!) / 1000);
      n++;
    }
    if (n > 0) {
      this.seqs.splice(0, n);
      this.times.splice(0, n);
    }
  }
}
