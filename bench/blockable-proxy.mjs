// A TCP forwarder that Node controls to the millisecond: `block()` makes the server unreachable (new connections
// are accepted and dropped at once, live ones cut), `unblock()` makes it reachable again and returns the instant
// (wall-clock epoch ms, comparable with the page's performance.timeOrigin + performance.now()).
import { connect, createServer } from "node:net";

export function startBlockableProxy(targetPort) {
  const live = new Set();
  let blocked = false;
  const server = createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, "127.0.0.1");
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pair = { client, upstream };
    live.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      live.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({
        port,
        ws: `ws://127.0.0.1:${port}`,
        block() {
          blocked = true;
          for (const { client, upstream } of live) {
            client.resetAndDestroy?.() ?? client.destroy();
            upstream.destroy();
          }
          live.clear();
        },
        unblock() {
          blocked = false;
          return performance.timeOrigin + performance.now();
        },
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
