// A raw durable.v1 client (frames as bytes, from a `ws` client) and a DurableServer on a free port of 127.0.0.1, for
// the package's tests.
import http from "node:http";
import WebSocket from "ws";
import { DurableServer } from "../dist/index.js";

export const varint = (n) => {
  const out = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
export const readVarint = (buf, i) => {
  let value = 0;
  for (let scale = 1; ; scale *= 128) {
    const b = buf[i++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, i];
  }
};

/** A raw durable.v1 client: frames in a queue, `next(type)` waits for the next frame of that type. */
export class Raw {
  static async open(url, resume) {
    const raw = new Raw();
    raw.ws = new WebSocket(url, ["durable.v1"]);
    raw.frames = [];
    raw.waiters = [];
    raw.closed = new Promise((resolve) => raw.ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    raw.ws.on("message", (data) => {
      raw.frames.push(data);
      raw.waiters.splice(0).forEach((wake) => wake());
    });
    await new Promise((resolve, reject) => {
      raw.ws.once("open", resolve);
      raw.ws.once("error", reject);
    });
    return raw;
  }
  async hello(resume) {
    this.ws.send(Buffer.from(resume ? [1, 1, ...resume.token, ...varint(resume.last)] : [1, 0]));
    const welcome = await this.next(2);
    return { status: welcome[1], token: [...welcome.subarray(2, 18)] };
  }
  async next(type, timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((frame) => frame[0] === type || (type === "data" && (frame[0] === 3 || frame[0] === 4)));
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`no frame ${type} within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
  async text() {
    const frame = await this.next("data");
    const [seq, at] = readVarint(frame, 1);
    return { seq, text: frame.subarray(at).toString() };
  }
  send(seq, text) {
    this.ws.send(Buffer.concat([Buffer.from([3, ...varint(seq)]), Buffer.from(text)]));
  }
  ack(seq) {
    this.ws.send(Buffer.from([5, ...varint(seq)]));
  }
  goodbye() {
    this.ws.send(Buffer.from([8]));
  }
}

export async function serve(options = {}) {
  const server = http.createServer();
  const durable = new DurableServer({ server, path: "/live", ...options });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `ws://127.0.0.1:${server.address().port}/live`;
  return { server, durable, url, close: async () => (await durable.close(), server.close()) };
}

/** A server with one raw client attached to its session: `{ ...serve(), session, client, token }`. */
export async function attachedSession(options) {
  const served = await serve(options);
  const session = new Promise((resolve) => served.durable.once("session", resolve));
  const client = await Raw.open(served.url);
  const { token } = await client.hello();
  return { ...served, session: await session, client, token };
}
