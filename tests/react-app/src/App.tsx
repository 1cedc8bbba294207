import { useEffect, useState } from "react";
import { useDurableWebSocket } from "durable-ws/react";
import type { UseDurableWebSocketResult } from "durable-ws/react";
import { Chat } from "./Chat";

declare global {
  interface Window {
    /** The echo component's latest hook result (tests/e2e/react.test.mjs drives it). */
    echo?: UseDurableWebSocketResult<string, string>;
    hideEcho?: () => void;
    showEcho?: () => void;
    SERVER?: string;
  }
}

/** A socket of its own, on /echo: the test sends through it and reads what came back. */
function Echo({ url }: { url: string }) {
  const result = useDurableWebSocket<string, string>(url, { history: 1000, reconnect: { minDelayMs: 10, maxDelayMs: 200 } });
  useEffect(() => {
    window.echo = result;
  });
  return (
    <p id="echo" data-ready-state={result.readyState} data-received={result.messages.length} data-pending={result.pending}>
      echo: state {result.readyState}, {result.messages.length} received, {result.pending} pending
    </p>
  );
}

export function App({ server }: { server: string }) {
  const [echo, setEcho] = useState(true);
  useEffect(() => {
    window.hideEcho = () => setEcho(false);
    window.showEcho = () => setEcho(true);
  }, []);
  return (
    <main>
      {echo && <Echo url={`${server}/echo`} />}
      <Chat url={`${server}/chat`} me="ann" />
      <Chat url={`${server}/chat`} me="bob" />
    </main>
  );
}
