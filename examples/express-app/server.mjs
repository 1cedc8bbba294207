// An ordinary Express app — its own routes, its own sign-in check — with a durable endpoint: everything sent
// into the `lobby` room (by a browser, by `POST /notes`, by a timer) reaches every member exactly once, in one
// order, across reconnects.
import http from "node:http";
import express from "express";
import { DurableServer, Refusal } from "durable-ws-server";

const app = express();
app.use(express.json());
const server = http.createServer(app);

const durable = new DurableServer({
  server,
  path: "/ws",
  // The app's own check at the upgrade (here `?user=NAME`; yours reads its session cookie). A refusal reaches the
  // browser as close code 4401/4403, which it can act on, instead of an HTTP status it cannot read.
  authenticate: (request) => {
    const user = new URL(request.url, "http://x").searchParams.get("user");
    if (!user) throw Refusal.unauthorized("sign in with ?user=NAME");
    return user;
  },
});
const lobby = durable.room("lobby");

// One browser session (it outlives reconnects): what it sends goes to the whole room.
durable.on("session", (session) => {
  session.join("lobby");
  session.on("message", (text) => lobby.send({ from: session.identity, text: String(text) }));
});

// An HTTP route that pushes into the room: every member gets it once, in order.
app.post("/notes", (req, res) => {
  const reached = lobby.send({ from: "http", text: String(req.body.text) });
  res.json({ reached });
});

// Every tab of one user, wherever they are.
app.post("/users/:user/notify", (req, res) => {
  res.json({ reached: durable.sendToUser(req.params.user, { from: "http", text: String(req.body.text) }) });
});

app.get("/health", (req, res) => res.json({ ok: true, ...durable.stats() }));

// A timer that publishes into the room.
setInterval(() => lobby.send({ from: "clock", text: new Date().toISOString() }), 5000).unref();

const [host, port] = (process.env.LISTEN ?? "127.0.0.1:3000").split(":");
server.listen(Number(port), host, () => console.log(`express-app listening on ${host}:${server.address().port}`));

process.on("SIGTERM", async () => {
  await durable.close(); // every client gets 1012 and reconnects
  server.close();
});
