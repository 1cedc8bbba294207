// The baseline: a plain `ws` 8 echo server (no protocol, no recovery), as an app would write it.
//   node plain-echo-server.mjs PORT
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.argv[2] ?? 8090), perMessageDeflate: false, clientTracking: false });
wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
wss.on("listening", () => console.log(`plain ws echo listening on 127.0.0.1:${wss.address().port}`));
