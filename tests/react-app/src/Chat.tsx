import { useDurableWebSocket, ReadyState } from "durable-ws/react";

type Note = { from: string; text: string };

/** Every component with the key "chat" shares one socket: one connection, one session. */
export function Chat({ url, me }: { url: string; me: string }) {
  const { send, messages, readyState, pending } = useDurableWebSocket<Note, Note>(url, { json: true, key: "chat" });
  return (
    <section>
      <p>
        {readyState === ReadyState.OPEN ? "online" : "connecting…"} · not yet confirmed: {pending}
      </p>
      <ul>
        {messages.map((note, i) => (
          <li key={i}>
            {note.from}: {note.text}
          </li>
        ))}
      </ul>
      <button onClick={() => send({ from: me, text: "hello" })}>Say hello</button>
    </section>
  );
}
