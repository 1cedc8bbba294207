// One socket.io node of the anchor benchmark (see run.mjs): socket.io 4.8 with the Redis Streams
// adapter and connection state recovery, websocket transport only, written as an app would write it.
//
//   node server.mjs --port P --redis redis://127.0.0.1:R --name A
//
// App behaviour:
// - "msg" n (client→server): the app stores n (RPUSH recv:<clientId>), echoes it (socket.emit("echo", n))
//   and acknowledges it if the client asked for an ack (the client's `retries` mode);
// - "push" n (server→client): while a socket is connected, every PUSH_INTERVAL_MS the app takes the next
//   number of the client's counter (INCR push:<clientId>, shared by all nodes, so the numbering continues on
//   any node after a reconnect) and emits it, until the deadline the client gave in its handshake `auth`;
// - on a new (not recovered) session the socket joins the room user:<clientId>, the target of the
//   producer's broadcasts (run.mjs); a recovered session gets its rooms back from socket.io.
// - SIGTERM is a graceful shutdown: io.close() (sockets are disconnected with "server shutting down", which
//   makes socket.io persist their sessions), then the Redis client quits (QUIT waits for pending replies, so
//   the sessions' SET commands reach Redis), then the process exits.
//
// Instrumentation only (no change of behaviour): the adapter's restoreSession is wrapped to log the outcome
// of each recovery attempt, and each "connection"/"disconnect" is logged, as JSON lines on stdout
// ("EVT {...}") for run.mjs to count.

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    redis: { type: "string" },
    name: { type: "string", default: "node" },
    "push-interval-ms": { type: "string", default: "10" },
  },
});
const PORT = Number(args.port);
const NAME = args.name;
const PUSH_INTERVAL_MS = Number(args["push-interval-ms"]);

const log = (event) => process.stdout.write(`EVT ${JSON.stringify({ node: NAME, t: Date.now(), ...event })}\n`);

const redisClient = createClient({ url: args.redis });
redisClient.on("error", (error) => log({ ev: "redis-error", message: String(error?.message ?? error) }));
await redisClient.connect();

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  adapter: createAdapter(redisClient),
  connectionStateRecovery: {
    maxDisconnectionDuration: 2 * 60 * 1000,
    skipMiddlewares: true,
  },
});

// Instrumentation: the outcome of each restore attempt (socket.io swallows the reason otherwise).
const adapter = io.of("/").adapter;
const restoreSession = adapter.restoreSession.bind(adapter);
adapter.restoreSession = async (pid, offset) => {
  try {
    const session = await restoreSession(pid, offset);
    log({ ev: "restore", ok: true, pid, offset, missed: session?.missedPackets?.length ?? 0 });
    return session;
  } catch (error) {
    log({ ev: "restore", ok: false, pid, offset, reason: String(error?.message ?? error) });
    throw error;
  }
};

io.on("connection", (socket) => {
  const clientId = String(socket.handshake.auth?.clientId ?? "anonymous");
  const pushUntil = Number(socket.handshake.auth?.pushUntil ?? 0);
  log({ ev: "connection", sid: socket.id, recovered: socket.recovered, clientId });
  if (!socket.recovered) socket.join(`user:${clientId}`);

  socket.on("msg", (n, ack) => {
    redisClient.rPush(`recv:${clientId}`, String(n)).catch(() => {});
    socket.emit("echo", n);
    if (typeof ack === "function") ack();
  });

  let timer = null;
  const tick = async () => {
    if (Date.now() >= pushUntil) {
      clearInterval(timer);
      return;
    }
    try {
      const n = await redisClient.incr(`push:${clientId}`);
      socket.emit("push", n);
    } catch {}
  };
  if (Date.now() < pushUntil) timer = setInterval(tick, PUSH_INTERVAL_MS);

  socket.on("disconnect", (reason) => {
    clearInterval(timer);
    log({ ev: "disconnect", sid: socket.id, reason });
  });
});

httpServer.listen(PORT, "127.0.0.1", () => log({ ev: "listening", port: PORT }));

let closing = false;
process.on("SIGTERM", () => {
  if (closing) return;
  closing = true;
  log({ ev: "sigterm" });
  io.close(async () => {
    try {
      await redisClient.quit();
    } catch {}
    log({ ev: "closed" });
    process.exit(0);
  });
  setTimeout(() => process.exit(1), 5000).unref();
});
