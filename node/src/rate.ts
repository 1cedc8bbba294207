// How fast one client's frames are read: the core's token bucket (crates/core/src/server/rate.rs, the Rust server's),
// driving `ws`'s pause and resume. Every frame takes a token — data, pings and pongs, durable and plain connections
// alike; with none left, reading pauses until one is back. Nothing is dropped.
import type { WebSocket } from "ws";
import { RateBucket, now } from "./core";

/** @internal One connection's read rate. */
export class ReadRate {
  private readonly bucket: RateBucket;
  private pausedUntil = 0;

  /** `mayResume`: whether reading may go on once the bucket allows it (not while closing or stalled). */
  constructor(
    private readonly ws: WebSocket,
    limits: { maxMessagesPerSecond: number; burst: number },
    private readonly mayResume: () => boolean,
  ) {
    this.bucket = new RateBucket(limits.maxMessagesPerSecond, limits.burst, performance.now());
    ws.on("ping", () => this.took());
    ws.on("pong", () => this.took());
    ws.once("close", () => this.bucket.free());
  }

  /** Whether reading is paused for the rate. */
  get paused(): boolean {
    return this.pausedUntil > now();
  }

  /** A frame was read: pauses reading for as long as the bucket says. */
  took() {
    if (this.ws.readyState > this.ws.OPEN) return;
    const wait = this.bucket.take(performance.now());
    if (wait <= 0 || this.paused) return;
    this.pausedUntil = now() + wait;
    this.ws.pause();
    setTimeout(() => {
      this.pausedUntil = 0;
      if (this.mayResume()) this.ws.resume();
    }, wait).unref();
  }
}
