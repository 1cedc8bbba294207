import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

/**
 * Which pages may open WebSockets (checked on the `Origin` header before the upgrade; others get HTTP 403):
 * a list of origins (`scheme://host[:port]`), `"*"` for all, or a function. A handshake without `Origin` comes from
 * a non-browser client and always passes. Default: pages from the host the client connected to (the `Host`
 * header), and on a server listening on loopback only loopback pages (`localhost`, `*.localhost`, 127.0.0.0/8,
 * `[::1]`), so a DNS-rebinding page is refused.
 */
export type OriginPolicy = readonly string[] | "*" | ((origin: string, request: IncomingMessage) => boolean);

/** Whether `host` (a hostname, brackets allowed) is a loopback name. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost") || h === "::1") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

function hostnameOf(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** Normalises an origin for comparison (lower case, no trailing slash); throws on one with a path or query. */
export function normalizeOrigin(origin: string): string {
  const trimmed = origin.trim().replace(/\/$/, "").toLowerCase();
  if (trimmed === "*") return trimmed;
  const url = new URL(trimmed);
  if (!/^(https?|wss?):$/.test(url.protocol) || url.pathname !== "/" || url.search || url.hash || trimmed.split("/").length !== 3) {
    throw new TypeError(`allowed origin must be scheme://host[:port], not ${JSON.stringify(origin)}`);
  }
  return trimmed;
}

/** Whether `request` passes `policy`; `loopbackOnly`: the server listens on loopback. */
export function originAllowed(policy: OriginPolicy | undefined, request: IncomingMessage, loopbackOnly: boolean): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  if (policy === "*") return true;
  if (typeof policy === "function") return policy(origin, request);
  if (policy) {
    const normalized = origin.trim().replace(/\/$/, "").toLowerCase();
    return policy.some((allowed) => allowed === "*" || normalizeOrigin(allowed) === normalized);
  }
  let host: string;
  try {
    if (origin === "null") return false;
    host = new URL(origin).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (loopbackOnly) return isLoopback(host);
  const expected = hostnameOf(request.headers.host);
  return expected !== undefined && (host === expected || (isLoopback(host) && isLoopback(expected)));
}
