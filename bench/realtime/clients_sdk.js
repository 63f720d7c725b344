// bench/realtime load generator speaking Centrifugo's protocol through its official JavaScript SDK
// (npm `centrifuge`): N SDK clients, each its own connection. Same JSON-lines protocol as clients.js:
//   in:  {"cmd":"subscribe","channels":[...]} | {"cmd":"report"} | {"cmd":"quit"}
//   out: {"ready":n} | {"subscribed":n} | {"received":n,"fell_behind":n,"closed":n,"latencies_ms":[...]}
// fell_behind counts subscriptions the server told to resubscribe (unsubscribe push 2500); the SDK then
// recovers what they missed from history by itself, and those publications count as received.
"use strict";
const { Centrifuge } = require("centrifuge");
const WebSocket = require("ws");
const readline = require("readline");

const [url, countArg, token] = process.argv.slice(2);
const count = Number(countArg);
const SAMPLE_LIMIT = 200000;
const clients = [];
const current = [];
let received = 0, fellBehind = 0, closed = 0, latencies = [];
let acked = 0;

// As clients.js: no permessage-deflate (the server's frames are plain either way).
class PlainWebSocket extends WebSocket {
  constructor(address, protocols) { super(address, protocols, { perMessageDeflate: false }); }
}

function say(message) { process.stdout.write(JSON.stringify(message) + "\n"); }

function open() {
  const client = new Centrifuge(url, { websocket: PlainWebSocket, token, timeout: 30000 });
  let ready = false;
  client.on("connected", () => { ready = true; });
  client.on("connecting", (ctx) => { if (ready && ctx.code !== 0) closed += 1; });
  client.connect();
  return client.ready(60000).then(() => client);
}

function onPublication(ctx) {
  received += 1;
  const latency = Date.now() - ctx.data.sent_at * 1000;
  if (latencies.length < SAMPLE_LIMIT) latencies.push(latency);
  else if (Math.random() < 0.1) latencies[Math.floor(Math.random() * SAMPLE_LIMIT)] = latency;
}

function subscribe(index, channel) {
  const client = clients[index];
  if (current[index]) client.removeSubscription(current[index]);
  const sub = client.newSubscription(channel);
  sub.on("publication", onPublication);
  sub.on("subscribed", (ctx) => { if (!ctx.wasRecovering) acked += 1; });
  sub.on("subscribing", (ctx) => { if (ctx.code === 2500) fellBehind += 1; });
  sub.subscribe();
  current[index] = sub;
}

async function main() {
  for (let start = 0; start < count; start += 200) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + 200); i++) batch.push(open());
    clients.push(...await Promise.all(batch));
  }
  clients.forEach(() => current.push(null));
  say({ ready: clients.length });
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const command = JSON.parse(line);
    if (command.cmd === "subscribe") {
      acked = 0;
      command.channels.forEach((channel, i) => subscribe(i, channel));
      const deadline = Date.now() + 120000;
      while (acked < command.channels.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      received = 0; fellBehind = 0; latencies = [];
      say({ subscribed: acked });
    } else if (command.cmd === "report") {
      say({ received, fell_behind: fellBehind, closed, latencies_ms: latencies });
    } else if (command.cmd === "quit") {
      clients.forEach((client) => client.disconnect());
      break;
    }
  }
  process.exit(0);
}

main().catch((error) => { console.error(error); process.exit(1); });
