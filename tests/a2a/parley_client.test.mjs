// Parley's A2A client against agents made with @a2a-js/sdk 1.3.0 (sdk_echo_agent.mjs), and
// against Parley's own server. Usage: node parley_client.test.mjs AGENT
// AGENT (a2a_test_agent) runs with platforms.a2a.client_timeout 2 s. The test talks to it over
// A2A too: "relay URL TEXT" makes its session call ask_agent(URL, TEXT); what comes back to the
// session (agent messages, agent_error, a2a_status) is recorded by the bot and read back with
// "events?", polled until it holds what is expected (or the deadline).
// Exits 77 (skip) when the SDK is not installed, unless PARLEY_REQUIRE_PEERS=1.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import assert from "node:assert/strict";
import { startAgent } from "./agent_process.mjs";

const SKIP = process.env.PARLEY_REQUIRE_PEERS === "1" ? 1 : 77;
const agentPath = process.argv[2];
if (!agentPath || !existsSync(agentPath)) { console.error("usage: node parley_client.test.mjs PATH/TO/a2a_test_agent"); process.exit(2); }
let startEchoAgents;
try {
  ({ startEchoAgents } = await import("./sdk_echo_agent.mjs"));
} catch (e) {
  console.error("SKIP: @a2a-js/sdk or express is not installed (./dev installs them into BUILD_DIR/npm):", e.message);
  process.exit(SKIP);
}
const watchdog = setTimeout(() => { console.error("FAIL: the test took over 60 s"); process.exit(1); }, 60000);

const peers = await startEchoAgents();
const { base, proc, exited, log } = await startAgent(agentPath, ["--set", "platforms.a2a.client_timeout=2"]);
console.log("parley agent at", base, "| sdk agents at", peers.base);

// A2A to the Parley agent, raw JSON-RPC (the SDK client is tested elsewhere).
let n = 0;
const say = async (contextId, text) => {
  const res = await fetch(new URL("/a2a", base), { method: "POST", headers: { "content-type": "application/json", "a2a-version": "1.0" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++n, method: "SendMessage",
      params: { message: { messageId: randomUUID(), role: "ROLE_USER", contextId, parts: [{ text }] } } }) });
  const j = await res.json();
  if (j.error) throw new Error("the agent answered " + JSON.stringify(j.error));
  return j.result.task.artifacts?.flatMap((a) => a.parts) ?? [];
};
// Polls the session's recorded agent events until `done(events)` holds.
const eventsUntil = async (contextId, done, what, ms = 8000) => {
  const end = Date.now() + ms;
  let events = [];
  while (Date.now() < end) {
    events = (await say(contextId, "events?"))[0].data;
    if (done(events)) return events;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events, null, 1)}`);
};

let failed = false;
try {
  // ---- send over a stream (the card offers it): the artifact's parts, the status message, the state ----
  let ctx = randomUUID();
  assert.deepEqual((await say(ctx, `relay ${peers.base}/ hello sdk`))[0].text, "asked");
  let ev = await eventsUntil(ctx, (e) => e.some((x) => x.name === "a2a_status"), "a2a_status");
  assert.deepEqual(ev.map((x) => x.kind === "text" ? x.text : x.kind === "json" ? JSON.stringify(x.payload) : x.name),
                   ["echo: hello sdk", '{"length":9}', "done", "a2a_status"]);
  assert.equal(ev[0].sender, `${peers.base}/`);
  assert.equal(ev[0].human, false);
  assert.equal(ev[0].depth, 2, "a lineage caused by the message sent (depth 1), one deeper");
  assert.equal(ev[3].payload.state, "TASK_STATE_COMPLETED");
  const sent = peers.echo.lastMetadata["https://parley.dev/a2a/lineage/v1"];
  assert.equal(sent.depth, 1, "the message sent carried the session's lineage in its metadata");
  assert.equal(ev[0].causation_id, sent.id);
  console.log("stream ok:", ev.map((x) => x.text ?? x.name).join(" | "));

  // ---- send without streaming (SendMessage) ----
  ctx = randomUUID();
  await say(ctx, `relay ${peers.base}/nostream/ plain`);
  ev = await eventsUntil(ctx, (e) => e.some((x) => x.name === "a2a_status"), "a2a_status");
  assert.deepEqual(ev.filter((x) => x.kind === "text").map((x) => x.text), ["echo: plain", "done"]);
  console.log("send ok");

  // ---- an agent that never answers: the timeout reaches the session as agent_error ----
  ctx = randomUUID();
  const t0 = Date.now();
  await say(ctx, `relay ${peers.base}/ never mind`);
  ev = await eventsUntil(ctx, (e) => e.some((x) => x.name === "agent_error"), "agent_error");
  const err = ev.find((x) => x.name === "agent_error");
  assert.match(err.payload.reason, /no answer within 2 s \(platforms\.a2a\.client_timeout\)/);
  assert.equal(err.payload.url, `${peers.base}/`);
  assert.ok(Date.now() - t0 >= 1500, "not before the timeout");
  console.log("timeout ok:", err.payload.reason);

  // ---- a card that is not A2A, an endpoint that answers garbage, nobody listening ----
  ctx = randomUUID();
  await say(ctx, `relay ${peers.base}/notacard/ hi`);
  await say(ctx, `relay ${peers.base}/garbage/ hi`);
  await say(ctx, `relay http://127.0.0.1:1/ hi`);
  ev = await eventsUntil(ctx, (e) => e.filter((x) => x.name === "agent_error").length === 3, "three agent_errors");
  const reasons = ev.filter((x) => x.name === "agent_error").map((x) => x.payload.reason).join("\n");
  assert.match(reasons, /not an A2A card/);
  assert.match(reasons, /not JSON-RPC/);
  assert.match(reasons, /cannot reach it/);
  console.log("bad peers ok");

  // ---- Parley to Parley (itself): lineage goes both ways, the follow-up keeps the context ----
  ctx = randomUUID();
  await say(ctx, `relay ${base} ping`);
  ev = await eventsUntil(ctx, (e) => e.some((x) => x.name === "a2a_status"), "a2a_status from parley");
  const pong = ev.find((x) => x.kind === "text");
  assert.equal(pong.text, "echo: ping (agent)", "the peer session saw an agent's message");
  assert.equal(pong.depth, 2, "the peer's reply carries its own lineage: depth 2");
  console.log("parley to parley ok:", pong.text);
  console.log("PASS");
} catch (e) {
  failed = true;
  console.error("FAIL:", e);
  console.error("agent log:\n" + log());
} finally {
  proc.kill("SIGTERM");
  const e = await exited;
  await peers.close();
  clearTimeout(watchdog);
  if (!failed && e.code !== 0) { console.error("the agent exited with", e); failed = true; }
}
process.exit(failed ? 1 : 0);
