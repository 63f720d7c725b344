// bench/realtime load generator: N WebSocket connections to the hub, in Node (`ws`), so the
// clients cost far less CPU than the Python server under test. Same JSON-lines protocol as clients.py:
//   in:  {"cmd":"subscribe","channels":[...]} | {"cmd":"report"} | {"cmd":"quit"}
//   out: {"ready":n} | {"subscribed":n} | {"received":n,"fell_behind":n,"closed":n,"latencies_ms":[...]}
"use strict";
const WebSocket = require("ws");
const readline = require("readline");

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
const SAMPLE_LIMIT = 200000;
const conns = [];
const current = [];
let received = 0, fellBehind = 0, closed = 0, latencies = [];
let acked = 0;  // subscribe replies: counting starts only once every subscription is live

function say(message) { process.stdout.write(JSON.stringify(message) + "\n"); }

function open(index) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { origin: "http://127.0.0.1", perMessageDeflate: false });
    ws.on("open", () => resolve(ws));
    ws.on("error", reject);
    ws.on("close", () => { closed += 1; });
    ws.on("message", (raw) => {
      const frame = JSON.parse(raw);
      if (frame.type === "publication") {
        received += 1;
        const latency = Date.now() - frame.data.sent_at * 1000;
        if (latencies.length < SAMPLE_LIMIT) latencies.push(latency);
        else if (Math.random() < 0.1) latencies[Math.floor(Math.random() * SAMPLE_LIMIT)] = latency;
      } else if (frame.type === "unsubscribe" && frame.data.code === 3001) {
        fellBehind += 1;
      } else if (frame.type === "subscribe") {
        acked += 1;
      } else if (frame.type === "error") {
        console.error("hub error", JSON.stringify(frame.data));
      }
    });
  });
}

async function main() {
  for (let start = 0; start < count; start += 200) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + 200); i++) batch.push(open(i));
    conns.push(...await Promise.all(batch));
  }
  conns.forEach(() => current.push(null));
  say({ ready: conns.length });
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const command = JSON.parse(line);
    if (command.cmd === "subscribe") {
      acked = 0;
      command.channels.forEach((channel, i) => {
        if (current[i]) conns[i].send(JSON.stringify({ id: 1, method: "unsubscribe", params: { channel: current[i] } }));
        conns[i].send(JSON.stringify({ id: 2, method: "subscribe", params: { channel } }));
        current[i] = channel;
      });
      const deadline = Date.now() + 120000;
      while (acked < command.channels.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      received = 0; fellBehind = 0; latencies = [];
      say({ subscribed: acked });
    } else if (command.cmd === "report") {
      say({ received, fell_behind: fellBehind, closed, latencies_ms: latencies });
    } else if (command.cmd === "quit") {
      conns.forEach((ws) => ws.close());
      break;
    }
  }
  process.exit(0);
}

main().catch((error) => { console.error(error); process.exit(1); });
