// One load generator for every echo server of the benchmarks: plain WebSocket echo, or durable.v1 (a minimal
// client written for the benchmark only: HELLO, DATA, cumulative ACKs every 16 messages or 20 ms, PONG).
//
//   node load.mjs --url ws://127.0.0.1:PORT/echo --mode durable|plain [--connections 50] [--window 32]
//                 [--payload 100] [--duration 10] [--rate R] [--hold] [--batch 250] [--server-pid PID]
//
// Pipelined (default): each connection keeps `window` messages in flight for `duration` s. `--rate R`: each
// connection sends R messages/s instead. `--hold`: only open the connections (and the sessions), report the
// server's RSS before and after, then close. Prints one JSON object.
import { readFileSync } from "node:fs";
import WebSocket from "ws";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]?.startsWith("--") || all[i + 1] === undefined ? "true" : all[i + 1]]);
    return pairs;
  }, []),
);
const url = args.url;
const durable = (args.mode ?? "durable") === "durable";
const connections = Number(args.connections ?? 50);
const windowSize = Number(args.window ?? 32);
const payloadBytes = Math.max(8, Number(args.payload ?? 100));
const duration = Number(args.duration ?? 10) * 1000;
const rate = args.rate ? Number(args.rate) : 0;
const hold = args.hold === "true";
const batch = Number(args.batch ?? 250);
const serverPid = args["server-pid"];

const rss = () => {
  if (!serverPid) return 0;
  const status = readFileSync(`/proc/${serverPid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
};

function varint(value, out) {
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}
function readVarint(buf, offset) {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = buf[offset++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, offset];
    scale *= 128;
  }
}

let measuring = false;
let echoes = 0;
const rtts = [];
let stopAt = Infinity;

class Client {
  constructor() {
    this.seq = 0;
    this.received = 0;
    this.acked = 0;
    this.ackTimer = undefined;
    this.ready = new Promise((resolve, reject) => {
      this.ws = new WebSocket(url, durable ? ["durable.v1"] : [], { perMessageDeflate: false });
      this.ws.binaryType = "nodebuffer";
      this.ws.on("error", reject);
      this.ws.on("open", () => {
        if (!durable) return resolve();
        this.ws.send(Buffer.from([1, 0]));
      });
      this.ws.on("message", (data) => {
        if (!durable) return this.echo(data, 0);
        const type = data[0];
        if (type === 2) return resolve();
        if (type === 4) {
          const [seq, at] = readVarint(data, 1);
          this.received = seq;
          this.echo(data, at);
          if (this.received - this.acked >= 16) this.ack();
          else this.ackTimer ??= setTimeout(() => this.ack(), 20);
        } else if (type === 6) {
          this.ws.send(Buffer.concat([Buffer.from([7]), data.subarray(1)]));
        }
      });
    });
  }

  ack() {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.received === this.acked || this.ws.readyState !== 1) return;
    this.acked = this.received;
    const frame = [5];
    varint(this.acked, frame);
    this.ws.send(Buffer.from(frame));
  }

  send() {
    const payload = Buffer.alloc(payloadBytes);
    payload.writeDoubleLE(performance.now(), 0);
    if (!durable) return this.ws.send(payload);
    const header = [4];
    varint(++this.seq, header);
    this.ws.send(Buffer.concat([Buffer.from(header), payload]));
  }

  echo(data, at) {
    const sent = data.readDoubleLE(at);
    if (measuring) {
      echoes++;
      if (rtts.length < 2_000_000) rtts.push(performance.now() - sent);
    }
    if (!rate && performance.now() < stopAt) this.send();
  }
}

const clients = [];
const rssBefore = rss();
const openedAt = performance.now();
for (let i = 0; i < connections; i += batch) {
  const group = Array.from({ length: Math.min(batch, connections - i) }, () => new Client());
  await Promise.all(group.map((client) => client.ready));
  clients.push(...group);
}
const openMs = performance.now() - openedAt;
await new Promise((resolve) => setTimeout(resolve, 1000));
const rssOpen = rss();
const result = { mode: durable ? "durable" : "plain", url, connections, openMs: Math.round(openMs), rssBefore, rssOpen, perSession: connections ? (rssOpen - rssBefore) / connections : 0 };

if (!hold) {
  const start = performance.now();
  stopAt = start + 1000 + duration;
  let timers = [];
  if (rate) {
    for (const client of clients) {
      const tick = () => {
        if (performance.now() >= stopAt) return;
        client.send();
        timers.push(setTimeout(tick, 1000 / rate));
      };
      timers.push(setTimeout(tick, Math.random() * (1000 / rate)));
    }
  } else {
    for (const client of clients) for (let i = 0; i < windowSize; i++) client.send();
  }
  await new Promise((resolve) => setTimeout(resolve, 1000)); // warm-up
  const cpu0 = process.cpuUsage();
  measuring = true;
  const measuredFrom = performance.now();
  await new Promise((resolve) => setTimeout(resolve, duration));
  measuring = false;
  const seconds = (performance.now() - measuredFrom) / 1000;
  const cpu = process.cpuUsage(cpu0);
  rtts.sort((a, b) => a - b);
  const pct = (p) => (rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor((p / 100) * rtts.length))] : NaN);
  Object.assign(result, {
    window: rate ? undefined : windowSize,
    rate: rate || undefined,
    payloadBytes,
    echoesPerSecond: Math.round(echoes / seconds),
    rttP50: +pct(50).toFixed(2),
    rttP99: +pct(99).toFixed(2),
    rttMax: +(rtts.at(-1) ?? NaN).toFixed(2),
    loadgenCpuPerEcho: echoes ? (cpu.user + cpu.system) / echoes : NaN,
    rssLoaded: rss(),
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
}
for (const client of clients) client.ws.terminate();
console.log(JSON.stringify(result));
process.exit(0);
