#!/usr/bin/env node
// The reference program of durable-ws-server: the Rust reference server's routes and flags (docs/SERVER.md) on
// the Node.js package, so the demo, the conformance suite, the chaos suite and the benchmarks run against either.
//
//   durable-ws-server-node --listen 127.0.0.1:8080 [--www DIR] [--enable-faults] [--auth-token NAME=SECRET] …
//
// Routes: /echo (durable echo when durable.v1 is offered, plain echo otherwise), /chat (one room, durable.v1
// only), GET /stats (JSON counters) and GET /metrics (Prometheus text) for loopback clients and --metrics-token,
// GET /healthz and /readyz (503 while draining after SIGTERM), POST /admin/cut|stall|expire|end (with
// --enable-faults), static files of --www.
import { createHash, timingSafeEqual } from "node:crypto";
import { createReadStream, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { isIP } from "node:net";
import { extname, join, normalize, resolve, sep } from "node:path";
import { DEFAULTS, METRIC_LABELS } from "./core";
import { DurableServer, METRICS_CONTENT_TYPE, SendError, tokenAuth, type OriginPolicy, type Session } from "./index";
import { isLoopback, normalizeOrigin } from "./origin";

const HELP = `durable-ws-server-node: the durable-ws reference server on Node.js (durable.v1 sessions over ws)

Usage: durable-ws-server-node [OPTIONS]

Options:
  --listen ADDR                  address to listen on [default: 127.0.0.1:8080]
  --www DIR                      directory of static files served at / [default: www]
  --session-ttl-secs SECS        how long a disconnected session is kept for a resume [default: 120]
  --max-sessions N               most sessions held at once (beyond: close 1013) [default: 10000]
  --max-message-bytes BYTES      largest message accepted (larger: close 1009) [default: 1048576]
  --max-buffer-messages N        most messages a session holds for its client [default: 10000]
  --max-buffer-bytes BYTES       most payload bytes a session holds for its client [default: 8388608]
  --heartbeat-interval-ms MS     time between the server's pings; 0 turns the heartbeat off [default: 15000]
  --heartbeat-timeout-ms MS      silence after a ping before the link is declared dead [default: 10000]
  --handshake-timeout-secs SECS  how long a durable connection may take to send its HELLO [default: 10]
  --max-outgoing-bytes BYTES     most bytes waiting to be written to one client [default: 1048576]
  --send-timeout-ms MS           a client whose queue stays full this long is closed with 1013 [default: 30000]
  --allowed-origin ORIGIN        origin allowed to open WebSockets; repeatable; '*' for all [default: same host]
  --auth-token NAME=SECRET       access token naming identity NAME; repeatable [default: none, auth off]
  --auth-token-file FILE         access tokens, one NAME=SECRET per line (# comments)
  --metrics-token TOKEN          a bearer token that lets clients beyond loopback read /stats and /metrics
                                 (Authorization: Bearer TOKEN) [default: none: loopback clients only]
  --enable-faults                serve POST /admin/cut, /admin/stall, /admin/expire, /admin/end (never in production)
  -h, --help                     print this help
`;

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n\n${HELP}`);
  process.exit(2);
}

interface Options {
  listen: string;
  www: string;
  sessionTtlSecs: number;
  maxSessions: number;
  maxMessageBytes: number;
  maxBufferMessages: number;
  maxBufferBytes: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  handshakeTimeoutSecs: number;
  maxOutgoingBytes: number;
  sendTimeoutMs: number;
  allowedOrigins: string[];
  authTokens: Array<[string, string]>;
  authTokenFile: string | undefined;
  metricsToken: string | undefined;
  enableFaults: boolean;
}

function parseToken(entry: string): [string, string] {
  const at = entry.indexOf("=");
  const name = entry.slice(0, at).trim();
  const secret = entry.slice(at + 1).trim();
  if (at < 0 || !name || !secret) fail("auth token must be NAME=SECRET");
  return [name, secret];
}

function parse(argv: string[]): Options {
  const options: Options = {
    listen: "127.0.0.1:8080",
    www: "www",
    sessionTtlSecs: DEFAULTS.sessionTtlMs / 1000,
    maxSessions: DEFAULTS.maxSessions,
    maxMessageBytes: DEFAULTS.maxMessageBytes,
    maxBufferMessages: DEFAULTS.maxBufferMessages,
    maxBufferBytes: DEFAULTS.maxBufferBytes,
    heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs,
    heartbeatTimeoutMs: DEFAULTS.heartbeatTimeoutMs,
    handshakeTimeoutSecs: DEFAULTS.handshakeTimeoutMs / 1000,
    maxOutgoingBytes: DEFAULTS.maxOutgoingBytes,
    sendTimeoutMs: DEFAULTS.sendTimeoutMs,
    allowedOrigins: [],
    authTokens: [],
    authTokenFile: undefined,
    metricsToken: undefined,
    enableFaults: false,
  };
  const numeric: Record<string, keyof Options> = {
    "--session-ttl-secs": "sessionTtlSecs",
    "--max-sessions": "maxSessions",
    "--max-message-bytes": "maxMessageBytes",
    "--max-buffer-messages": "maxBufferMessages",
    "--max-buffer-bytes": "maxBufferBytes",
    "--heartbeat-interval-ms": "heartbeatIntervalMs",
    "--heartbeat-timeout-ms": "heartbeatTimeoutMs",
    "--handshake-timeout-secs": "handshakeTimeoutSecs",
    "--max-outgoing-bytes": "maxOutgoingBytes",
    "--send-timeout-ms": "sendTimeoutMs",
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let value: string | undefined;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) [arg, value] = [arg.slice(0, eq), arg.slice(eq + 1)];
    const next = () => value ?? argv[++i] ?? fail(`${arg} needs a value`);
    if (arg === "-h" || arg === "--help") {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (arg === "--enable-faults") options.enableFaults = true;
    else if (arg === "--listen") options.listen = next();
    else if (arg === "--www") options.www = next();
    else if (arg === "--allowed-origin") options.allowedOrigins.push(next());
    else if (arg === "--auth-token") options.authTokens.push(parseToken(next()));
    else if (arg === "--auth-token-file") options.authTokenFile = next();
    else if (arg === "--metrics-token") options.metricsToken = next();
    else if (numeric[arg]) {
      const text = next();
      const n = Number(text);
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) fail(`${arg}: not a number: ${text}`);
      (options as unknown as Record<string, number>)[numeric[arg]!] = n;
    } else fail(`unknown argument ${arg}`);
  }
  if (options.maxBufferMessages < 1) fail("--max-buffer-messages must be at least 1");
  if (options.maxBufferBytes < options.maxMessageBytes) fail("--max-buffer-bytes must be at least --max-message-bytes");
  if (options.heartbeatIntervalMs > 0 && options.heartbeatTimeoutMs === 0) {
    fail("--heartbeat-timeout-ms must be at least 1 (or turn the heartbeat off with --heartbeat-interval-ms 0)");
  }
  if (options.authTokenFile) {
    let text: string;
    try {
      text = readFileSync(options.authTokenFile, "utf8");
    } catch (error) {
      fail(`cannot read ${options.authTokenFile}: ${(error as Error).message}`);
    }
    text.split("\n").forEach((line) => {
      const trimmed = line.trim();
      if (trimmed && !trimmed.startsWith("#")) options.authTokens.push(parseToken(trimmed));
    });
  }
  return options;
}

function splitListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!match) fail(`--listen must be HOST:PORT, not ${listen}`);
  return { host: match[1] ?? match[2]!, port: Number(match[3]) };
}

const level = (process.env.DURABLE_WS_LOG ?? process.env.RUST_LOG ?? "info").toLowerCase();
const verbose = /info|debug|trace/.test(level);
const log = (what: string, fields: Record<string, unknown> = {}) => {
  if (!verbose) return;
  const rest = Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  process.stderr.write(`${new Date().toISOString()} INFO durable-ws-server-node: ${what}${rest.join("")}\n`);
};
const warn = (what: string, fields: Record<string, unknown> = {}) => {
  if (/^(error|off)/.test(level)) return;
  const rest = Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  process.stderr.write(`${new Date().toISOString()} WARN durable-ws-server-node: ${what}${rest.join("")}\n`);
};

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json",
  ".ts": "text/plain; charset=utf-8",
};

function serveStatic(root: string, request: IncomingMessage, response: ServerResponse) {
  const pathname = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
  let file = normalize(join(root, pathname));
  if (file !== root && !file.startsWith(root + sep)) return notFound(response);
  try {
    if (statSync(file).isDirectory()) file = join(file, "index.html");
    const stat = statSync(file);
    response.writeHead(200, { "content-type": MIME[extname(file)] ?? "application/octet-stream", "content-length": stat.size });
    if (request.method === "HEAD") return response.end();
    createReadStream(file).pipe(response);
  } catch {
    notFound(response);
  }
}

const PLAIN = "text/plain; charset=utf-8";

function notFound(response: ServerResponse) {
  response.writeHead(404, { "content-type": "text/plain" });
  response.end("not found\n");
}

function json(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { "content-type": "application/json", "access-control-allow-origin": "*" });
  response.end(JSON.stringify(body));
}

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * Whether `request` may read /stats and /metrics (as the Rust reference server's monitoring routes): from a loopback
 * address, or with `Authorization: Bearer` and the --metrics-token (compared in constant time). Not public by default.
 */
function monitoringAllowed(request: IncomingMessage, token: string | undefined): boolean {
  const peer = (request.socket.remoteAddress ?? "").replace(/^::ffff:/i, "");
  if ((isIP(peer) === 4 && peer.startsWith("127.")) || peer === "::1") return true;
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
  return token !== undefined && bearer !== undefined && timingSafeEqual(digest(bearer), digest(token));
}

function text(request: IncomingMessage, response: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}) {
  response.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "cache-control": "no-store", ...headers });
  response.end(request.method === "HEAD" ? undefined : body);
}

function main() {
  const options = parse(process.argv.slice(2));
  const { host, port } = splitListen(options.listen);
  let origins: OriginPolicy | undefined;
  try {
    const list = options.allowedOrigins.map(normalizeOrigin);
    origins = list.includes("*") ? "*" : list.length ? list : undefined;
  } catch (error) {
    fail((error as Error).message);
  }
  let authenticate;
  try {
    authenticate = options.authTokens.length ? tokenAuth(options.authTokens) : undefined;
  } catch (error) {
    fail((error as Error).message);
  }
  const www = resolve(options.www);
  let durable: DurableServer;
  // From SIGTERM until the connections are closed: /readyz answers 503 (the listener stays open meanwhile).
  let draining = false;

  const http = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://x");
    const read = request.method === "GET" || request.method === "HEAD";
    // /stats and /metrics: counters only (no names, tokens or payloads), readable by any page (CORS *), but only
    // for loopback clients and the --metrics-token. /healthz and /readyz say nothing but a status: open.
    if ((url.pathname === "/stats" || url.pathname === "/metrics") && read) {
      const cors = { "access-control-allow-origin": "*" };
      if (!monitoringAllowed(request, options.metricsToken)) {
        return text(request, response, 403, PLAIN, "monitoring is open to loopback clients and to --metrics-token only", cors);
      }
      if (url.pathname === "/stats") return json(response, 200, durable.stats());
      return text(request, response, 200, METRICS_CONTENT_TYPE, durable.metrics(), cors);
    }
    if (url.pathname === "/healthz" && read) return text(request, response, 200, PLAIN, "ok");
    if (url.pathname === "/readyz" && read) return draining ? text(request, response, 503, PLAIN, "not ready") : text(request, response, 200, PLAIN, "ready");
    if (options.enableFaults && url.pathname.startsWith("/admin/")) return adminRoute(url, request, response);
    if (request.method !== "GET" && request.method !== "HEAD") return notFound(response);
    serveStatic(www, request, response);
  });

  function adminRoute(url: URL, request: IncomingMessage, response: ServerResponse) {
    const action = url.pathname.slice("/admin/".length);
    if (!["cut", "stall", "expire", "end"].includes(action)) return json(response, 404, { error: "not found" });
    if (request.method !== "POST") return json(response, 405, { error: "method not allowed" });
    const which = url.searchParams.get("session") ?? (action === "stall" ? "all" : null);
    if (which === null) return json(response, 400, { error: "missing session=all|<token-hex>" });
    let target: Session | undefined;
    if (which !== "all") {
      if (!/^[0-9a-fA-F]{32}$/.test(which)) return json(response, 400, { error: "session must be all or 32 hex digits" });
      target = durable.findToken(which);
      if (!target) return json(response, 404, { error: "no such session" });
    }
    let affected: number;
    if (action === "cut") affected = durable.cut(target);
    else if (action === "stall") {
      const ms = url.searchParams.get("ms");
      if (ms === null) return json(response, 400, { error: "missing ms=N" });
      if (!/^\d+$/.test(ms) || Number(ms) > 600_000) return json(response, 400, { error: "ms must be at most 600000" });
      affected = durable.stall(Number(ms), target);
    } else if (action === "end") {
      const sessions = target ? [target] : durable.liveSessions;
      for (const session of sessions) session.end();
      affected = sessions.length;
    } else {
      affected = (target ? [target] : durable.liveSessions).filter((session) => durable.expire(session)).length;
    }
    log(`admin: ${action}`, { affected });
    json(response, 200, { affected });
  }

  // The default origin policy of the Rust server: listening on loopback, every loopback name and nothing else (a
  // DNS-rebinding page is refused); on a specific address, that address or the Host header's host; on every
  // interface, the Host header's host.
  const loopback = isLoopback(host);
  const unspecified = host === "0.0.0.0" || host === "::";
  const sameHost: OriginPolicy = (origin, request) => {
    let originHost: string;
    try {
      if (origin === "null") return false;
      originHost = new URL(origin).hostname.toLowerCase().replace(/^\[|\]$/g, "");
    } catch {
      return false;
    }
    if (loopback) return isLoopback(originHost);
    if (!unspecified && originHost === host.toLowerCase()) return true;
    try {
      return originHost === new URL(`http://${request.headers.host}`).hostname.toLowerCase().replace(/^\[|\]$/g, "");
    } catch {
      return false;
    }
  };

  durable = new DurableServer({
    server: http,
    path: ["/echo", "/chat"],
    authenticate,
    allowedOrigins: origins ?? sameHost,
    sessionTtlMs: options.sessionTtlSecs * 1000,
    maxSessions: options.maxSessions,
    maxMessageBytes: options.maxMessageBytes,
    maxBufferMessages: options.maxBufferMessages,
    maxBufferBytes: options.maxBufferBytes,
    heartbeat: options.heartbeatIntervalMs > 0 ? { intervalMs: options.heartbeatIntervalMs, timeoutMs: options.heartbeatTimeoutMs } : false,
    handshakeTimeoutMs: options.handshakeTimeoutSecs * 1000,
    maxOutgoingBytes: options.maxOutgoingBytes,
    sendTimeoutMs: options.sendTimeoutMs,
    plain: (ws, request) => {
      if (request.url?.split("?")[0] === "/chat") {
        // Counted as the Rust server counts its durable-only route's refusal.
        durable.recorder.refused(METRIC_LABELS.handshake.NOT_DURABLE);
        return ws.close(1008, "durable.v1 required");
      }
      // The plain echo: no recovery (what was on the wire at a cut is lost). Counted as messages out by the server.
      ws.on("message", (data, isBinary) => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(data, { binary: isBinary });
      });
    },
  });

  durable.on("session", (session) => {
    log(session.startedAs === "new" ? "session created" : "resume impossible: session lost; new session created", {
      session: session.id,
      status: session.startedAs,
      path: session.path,
      user: session.identity ?? "anonymous",
    });
    session.on("ended", ({ reason, unconfirmed }) => log("session ended", { session: session.id, reason, unconfirmed: unconfirmed.length }));
    if (session.path === "/chat") {
      session.join("chat");
      const room = durable.room("chat");
      session.on("message", (data) => {
        try {
          room.send(data);
        } catch (error) {
          warn("chat message not relayed", { error: String(error) });
        }
      });
      return;
    }
    session.on("message", (data) => {
      try {
        session.send(data);
      } catch (error) {
        // A client that neither reads nor acknowledges: it learns it as `sessionlost`.
        if (error instanceof SendError && error.code === "full") session.evict();
      }
    });
  });
  durable.on("refused", (request, code, reason) =>
    warn(code === 403 ? "handshake refused: origin not allowed" : "handshake refused: authentication failed", {
      code,
      reason,
      path: request.url?.split("?")[0],
      origin: request.headers.origin,
    }),
  );

  http.on("error", (error) => {
    process.stderr.write(`error: cannot listen on ${options.listen}: ${error.message}\n`);
    process.exit(1);
  });
  http.listen(port, host, () => {
    const address = http.address();
    const shown = typeof address === "object" && address ? (address.family === "IPv6" ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`) : options.listen;
    log("listening", { addr: shown, auth: authenticate ? "tokens" : "off (anonymous)", faults: options.enableFaults });
    // The same stable line as the Rust server, so scripts that asked for port 0 learn the port.
    process.stdout.write(`durable-ws-server listening on ${shown}\n`);
  });

  const shutdown = async () => {
    if (draining) return;
    draining = true;
    log("shutting down: closing connections with 1012");
    // Not ready from now on; HTTP is still answered (/readyz: 503) until the WebSockets have closed.
    await durable.close();
    http.close();
    http.closeAllConnections?.();
    log("stopped");
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

main();
