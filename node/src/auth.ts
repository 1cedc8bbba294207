import type { IncomingMessage } from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import { Refusal } from "./errors";

/** The query parameter a browser page puts its access token in (it cannot set headers on a WebSocket). */
export const TOKEN_QUERY_PARAMETER = "access_token";
/** The cookie read for an access token. */
export const TOKEN_COOKIE = "durable_ws_token";

/**
 * The access token of a handshake, as the Rust server reads it: the `access_token` query parameter, else the
 * `durable_ws_token` cookie (quotes removed), else `Authorization: Bearer`. `undefined` when there is none.
 */
export function requestToken(request: IncomingMessage): string | undefined {
  const url = new URL(request.url ?? "/", "http://x");
  const query = url.searchParams.get(TOKEN_QUERY_PARAMETER);
  if (query) return query;
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [name, ...rest] = part.split("=");
    if (name?.trim() === TOKEN_COOKIE) {
      const value = rest.join("=").trim().replace(/^"(.*)"$/, "$1");
      if (value) return value;
    }
  }
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "");
  return bearer?.[1]?.trim() || undefined;
}

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * An `authenticate` hook over fixed access tokens (`{ alice: "secret-a", … }`, or `[name, secret]` pairs): a
 * handshake without a token is refused with 4401 "missing credentials", one whose token matches none with 4403
 * "invalid credentials"; otherwise the session belongs to that name. Secrets are compared in constant time.
 */
export function tokenAuth(tokens: Record<string, string> | Iterable<readonly [string, string]>): (request: IncomingMessage) => string {
  const entries = Symbol.iterator in Object(tokens) ? [...(tokens as Iterable<readonly [string, string]>)] : Object.entries(tokens);
  const secrets = new Set<string>();
  const table = entries.map(([name, secret]) => {
    if (!name || !secret) throw new TypeError("an access token needs a name and a secret");
    if (secrets.has(secret)) throw new TypeError(`two names share a secret (${name})`);
    secrets.add(secret);
    return { name, secret: digest(secret) };
  });
  return (request) => {
    const token = requestToken(request);
    if (token === undefined) throw Refusal.unauthorized();
    const presented = digest(token);
    let found: string | undefined;
    for (const entry of table) if (timingSafeEqual(entry.secret, presented)) found ??= entry.name;
    if (found === undefined) throw Refusal.forbidden();
    return found;
  };
}
