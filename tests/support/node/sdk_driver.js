// Drives Centrifugo's official JavaScript SDK (npm `centrifuge`) for tests/realtime, one client per process.
// stdin, JSON lines:  {"id": n, "op": "connect"|"subscribe"|"unsubscribe"|"publish"|"history"|"presence"|
//                      "presence_stats"|"disconnect", ...}
// stdout, JSON lines: {"id": n, "ok": result} | {"id": n, "error": {...}} | {"event": name, ...}
// getToken callbacks fetch a fresh token from our API (POST tokenUrl with the user's bearer JWT),
// exactly as a front end would, and report each call as an event.
"use strict";
const { Centrifuge } = require("centrifuge");
const WebSocket = require("ws");
const readline = require("readline");

let client = null;
const subs = new Map();

function say(message) { process.stdout.write(JSON.stringify(message) + "\n"); }

function fetchToken(url, bearer, body, kind) {
  return async () => {
    say({ event: "get_token", kind });
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${bearer}` },
      body: JSON.stringify(body),
    });
    if (response.status !== 200) throw new Error(`token endpoint answered ${response.status}`);
    return (await response.json()).token;
  };
}

function connect(cmd) {
  const options = { websocket: WebSocket, timeout: 5000, minReconnectDelay: 100, maxReconnectDelay: 500 };
  if (cmd.token) options.token = cmd.token;
  if (cmd.token_url) options.getToken = fetchToken(cmd.token_url, cmd.bearer, cmd.token_body || {}, "connection");
  client = new Centrifuge(cmd.url, options);
  for (const name of ["connecting", "connected", "disconnected"]) {
    client.on(name, (ctx) => say({ event: name, code: ctx.code, reason: ctx.reason, client: ctx.client }));
  }
  client.on("error", (ctx) => say({ event: "error", type: ctx.type, error: ctx.error }));
  client.on("publication", (ctx) => say({ event: "server_publication", channel: ctx.channel, data: ctx.data,
                                          offset: ctx.offset }));
  client.on("subscribed", (ctx) => say({ event: "server_subscribed", channel: ctx.channel }));
  client.connect();
  return cmd.wait === false ? {} : client.ready(5000).then(() => ({ state: client.state }));
}

function subscribe(cmd) {
  const options = { joinLeave: Boolean(cmd.join_leave) };
  if (cmd.token) options.token = cmd.token;
  if (cmd.token_url) {
    options.getToken = fetchToken(cmd.token_url, cmd.bearer, { channel: cmd.channel, ...(cmd.token_body || {}) },
                                  "subscription");
  }
  const sub = client.newSubscription(cmd.channel, options);
  subs.set(cmd.channel, sub);
  sub.on("publication", (ctx) => say({ event: "publication", channel: ctx.channel, data: ctx.data, offset: ctx.offset }));
  sub.on("join", (ctx) => say({ event: "join", channel: ctx.channel, info: ctx.info }));
  sub.on("leave", (ctx) => say({ event: "leave", channel: ctx.channel, info: ctx.info }));
  sub.on("subscribing", (ctx) => say({ event: "subscribing", channel: ctx.channel, code: ctx.code, reason: ctx.reason }));
  sub.on("subscribed", (ctx) => say({ event: "subscribed", channel: ctx.channel, recovered: ctx.recovered,
                                      was_recovering: ctx.wasRecovering, recoverable: ctx.recoverable }));
  sub.on("unsubscribed", (ctx) => say({ event: "unsubscribed", channel: ctx.channel, code: ctx.code,
                                        reason: ctx.reason }));
  sub.on("error", (ctx) => say({ event: "sub_error", channel: ctx.channel, type: ctx.type, error: ctx.error }));
  sub.subscribe();
  return sub.ready(5000).then(() => ({ state: sub.state }));
}

const ops = {
  connect,
  subscribe,
  unsubscribe: (cmd) => { subs.get(cmd.channel).unsubscribe(); return {}; },
  publish: (cmd) => client.publish(cmd.channel, cmd.data),
  history: (cmd) => client.history(cmd.channel, cmd.options || {}),
  presence: (cmd) => client.presence(cmd.channel),
  presence_stats: (cmd) => client.presenceStats(cmd.channel),
  disconnect: () => { client.disconnect(); return {}; },
};

async function main() {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const cmd = JSON.parse(line);
    if (cmd.op === "quit") break;
    Promise.resolve()
      .then(() => ops[cmd.op](cmd))
      .then((ok) => say({ id: cmd.id, ok: ok === undefined ? {} : ok }),
            (error) => say({ id: cmd.id, error: { code: error.code, message: error.message || String(error) } }));
  }
  if (client) client.disconnect();
  process.exit(0);
}

main().catch((error) => { console.error(error); process.exit(1); });
