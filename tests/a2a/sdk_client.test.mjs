// @a2a-js/sdk 1.3.0's client against Parley's A2A server. Usage: node sdk_client.test.mjs AGENT
// Starts AGENT (tests/a2a/a2a_test_agent.cpp) on a free port with a bearer token, then: the
// card, a blocking send, a stream, a multi-turn conversation on one context (INPUT_REQUIRED,
// then the same taskId), a second task in the same context, cancel, unknown task, the
// A2A-Version check, the token, and malformed JSON-RPC (each answered, the server keeps going).
// Exits 77 (skip) when the SDK is not installed, unless PARLEY_REQUIRE_PEERS=1.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import assert from "node:assert/strict";
import { startAgent } from "./agent_process.mjs";

const SKIP = process.env.PARLEY_REQUIRE_PEERS === "1" ? 1 : 77;
const agentPath = process.argv[2];
if (!agentPath || !existsSync(agentPath)) { console.error("usage: node sdk_client.test.mjs PATH/TO/a2a_test_agent"); process.exit(2); }
let sdk, client_sdk;
try {
  sdk = await import("@a2a-js/sdk");
  client_sdk = await import("@a2a-js/sdk/client");
} catch {
  console.error("SKIP: @a2a-js/sdk is not installed (./dev installs it into BUILD_DIR/npm)");
  process.exit(SKIP);
}
const { Role, TaskState } = sdk;
const { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory } = client_sdk;
const watchdog = setTimeout(() => { console.error("FAIL: the test took over 60 s"); process.exit(1); }, 60000);

const TOKEN = "s3cret-" + randomUUID();
const { base, proc, exited, log } = await startAgent(agentPath, ["--set", `platforms.websocket.token=${TOKEN}`]);
console.log("agent at", base);

const st = (s) => TaskState[s?.state];
const partStr = (p) => (p.content?.$case === "text" ? p.content.value : JSON.stringify(p.content?.value));
const userText = (text, extra = {}) => ({
  messageId: randomUUID(), role: Role.ROLE_USER,
  parts: [{ content: { $case: "text", value: text }, mediaType: "text/plain", filename: "", metadata: undefined }],
  contextId: "", taskId: "", metadata: undefined, extensions: [], referenceTaskIds: [], ...extra,
});
const replies = (task) => task.artifacts.flatMap((a) => a.parts.map(partStr));
const rpcUrl = new URL("/a2a", base).href;
const rpc = async (body, headers = {}) => {
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json", "a2a-version": "1.0", authorization: `Bearer ${TOKEN}`, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
};

let failed = false;
try {
  // ---- card: public, v1.0 shape, JSON-RPC interface on this server, streaming, bearer auth ----
  const card = await new DefaultAgentCardResolver().resolve(base);
  assert.equal(card.name, "a2a_test_agent");
  assert.equal(card.supportedInterfaces[0].protocolBinding, "JSONRPC");
  assert.equal(card.supportedInterfaces[0].url, rpcUrl);
  assert.equal(card.supportedInterfaces[0].protocolVersion, "1.0");
  assert.equal(card.capabilities.streaming, true);
  assert.deepEqual(card.skills.map((s) => s.id), ["weather"]);
  assert.ok(card.securitySchemes.bearer, "the card declares the bearer token");
  console.log("card ok:", card.name, card.supportedInterfaces[0].url);

  const authFetch = (url, init = {}) => fetch(url, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${TOKEN}` } });
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default,
    { transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch })] }));
  const client = await factory.createFromAgentCard(card);

  // ---- blocking send: a task, COMPLETED, the reply as an artifact; the context is a session ----
  const t1 = await client.sendMessage({ message: userText("hello there") });
  assert.equal(st(t1.status), "TASK_STATE_COMPLETED");
  assert.deepEqual(replies(t1), ["echo: hello there"]);
  assert.ok(t1.contextId.length >= 32, "a new context id was made");
  const rich = await client.sendMessage({ message: userText("rich", { contextId: t1.contextId }) });
  assert.equal(rich.contextId, t1.contextId);
  assert.notEqual(rich.id, t1.id, "a new task in the same context");
  const parts = rich.artifacts.flatMap((a) => a.parts);
  assert.equal(parts[0].mediaType, "text/markdown");
  assert.deepEqual(parts[1].content, { $case: "data", value: { k: 1 } });
  assert.equal(parts[2].content.$case, "raw");
  assert.equal(parts[2].filename, "a.txt");
  console.log("send ok:", replies(t1), "| rich:", parts.map((p) => p.content.$case).join(","));

  // ---- stream: task, WORKING, artifact, COMPLETED; then the stream ends ----
  const seen = [];
  for await (const ev of client.sendMessageStream({ message: userText("stream me") })) {
    const { $case, value } = ev.payload;
    seen.push($case === "statusUpdate" ? st(value.status) : $case === "artifactUpdate" ? partStr(value.artifact.parts[0]) : $case + ":" + st(value.status));
  }
  assert.deepEqual(seen, ["task:TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "echo: stream me", "TASK_STATE_COMPLETED"]);
  console.log("stream ok:", seen.join(" > "));

  // ---- multi-turn: INPUT_REQUIRED, then the answer on the same task ----
  const q = await client.sendMessage({ message: userText("ask weather") });
  assert.equal(st(q.status), "TASK_STATE_INPUT_REQUIRED");
  assert.deepEqual(replies(q), ["Which city?"]);
  const a = await client.sendMessage({ message: userText("Zurich", { taskId: q.id, contextId: q.contextId }) });
  assert.equal(a.id, q.id);
  assert.equal(a.contextId, q.contextId);
  assert.equal(st(a.status), "TASK_STATE_COMPLETED");
  assert.deepEqual(replies(a), ["Which city?", "Weather in Zurich: sunny", '{"city":"Zurich"}']);
  assert.equal(a.history.length, 4, "user, agent, user, agent");
  // The same context goes on as a new task; the finished one takes no more messages.
  const next = await client.sendMessage({ message: userText("and now?", { contextId: q.contextId }) });
  assert.deepEqual(replies(next), ["echo: and now?"]);
  await assert.rejects(client.sendMessage({ message: userText("again", { taskId: q.id }) }),
                       (e) => e.constructor.name === "JsonRpcUnsupportedOperationError");
  // A streamed turn that asks closes at INPUT_REQUIRED.
  const asked = [];
  for await (const ev of client.sendMessageStream({ message: userText("ask again") })) asked.push(ev.payload.$case);
  assert.deepEqual(asked, ["task", "statusUpdate", "artifactUpdate", "statusUpdate"]);
  console.log("multi-turn ok:", replies(a));

  // ---- cancel: a slow turn started without waiting, canceled, and GetTask agrees ----
  const s = await client.sendMessage({ message: userText("slow"), configuration: { returnImmediately: true, acceptedOutputModes: [] } });
  assert.ok(["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"].includes(st(s.status)), st(s.status));
  const c = await client.cancelTask({ id: s.id, tenant: "", metadata: undefined });
  assert.equal(st(c.status), "TASK_STATE_CANCELED");
  assert.equal(st((await client.getTask({ id: s.id, tenant: "" })).status), "TASK_STATE_CANCELED");
  assert.equal(st((await client.cancelTask({ id: s.id, tenant: "", metadata: undefined })).status), "TASK_STATE_CANCELED", "cancel is idempotent");
  await assert.rejects(client.cancelTask({ id: t1.id, tenant: "", metadata: undefined }),
                       (e) => e.constructor.name === "JsonRpcTaskNotCancelableError");
  console.log("cancel ok");

  // ---- unknown task ----
  await assert.rejects(client.getTask({ id: "no-such-task", tenant: "" }),
                       (e) => e.constructor.name === "JsonRpcTaskNotFoundError");
  await assert.rejects(client.sendMessage({ message: userText("x", { taskId: "no-such-task" }) }),
                       (e) => e.constructor.name === "JsonRpcTaskNotFoundError");

  // ---- raw JSON-RPC: version, token, malformed requests; each gets its error, nothing stops ----
  const send = (id, extra = {}) => ({ jsonrpc: "2.0", id, method: "SendMessage",
    params: { message: { messageId: randomUUID(), role: "ROLE_USER", parts: [{ text: "hi" }] } }, ...extra });
  let r = await rpc(send(1), { "a2a-version": "" });
  assert.equal(r.json.error.code, -32009, "no A2A-Version means 0.3");
  assert.equal(r.json.id, 1);
  assert.equal(r.json.error.data[0].reason, "VERSION_NOT_SUPPORTED");
  assert.equal((await rpc(send(2), { "a2a-version": "0.3" })).json.error.code, -32009);
  r = await rpc(send(3), { authorization: "" });
  assert.equal(r.status, 401);
  assert.equal((await rpc(send(4), { authorization: "Bearer wrong" })).status, 401);
  r = await rpc("{not json");
  assert.equal(r.json.error.code, -32700);
  assert.equal(r.json.id, null);
  assert.equal((await rpc("[1,2]")).json.error.code, -32600);
  assert.equal((await rpc({ id: 5, method: "SendMessage" })).json.error.code, -32600, "no jsonrpc");
  assert.equal((await rpc({ jsonrpc: "2.0", id: 6, method: "message/send", params: {} })).json.error.code, -32601);
  r = await rpc({ jsonrpc: "2.0", id: 7, method: "SendMessage", params: { message: { role: "ROLE_USER", parts: [{ text: "x" }] } } });
  assert.equal(r.json.error.code, -32602);
  assert.match(r.json.error.message, /messageId/);
  r = await rpc({ jsonrpc: "2.0", id: 8, method: "SendMessage", params: { message: { messageId: "m", role: "ROLE_USER", parts: [{ kind: "file", file: { uri: "https://x/y" } }] } } });
  assert.equal(r.json.error.code, -32602, "v0.3 file parts are refused with a clear message");
  assert.match(r.json.error.message, /exactly one of text, data, raw, url/);
  assert.equal((await rpc({ jsonrpc: "2.0", id: 9, method: "GetTask", params: {} })).json.error.code, -32602);
  assert.equal((await rpc({ jsonrpc: "2.0", id: 10, method: "SubscribeToTask", params: { id: t1.id } })).json.error.code, -32004);
  assert.equal((await rpc("[".repeat(100000))).json.error.code, -32700, "deep nesting is refused");
  const big = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json", "a2a-version": "1.0", authorization: `Bearer ${TOKEN}` },
                                    body: JSON.stringify(send(11, { pad: "x".repeat(2 << 20) })) }).catch((e) => ({ status: "reset" }));
  assert.equal(big.status, 413, "an over-long body is refused");
  // ListTasks for one context (GetTask's history bound too).
  r = await rpc({ jsonrpc: "2.0", id: 12, method: "ListTasks", params: { contextId: q.contextId } });
  assert.equal(r.json.result.totalSize, 2, "the asked task and the next");
  assert.deepEqual(r.json.result.tasks.map((t) => t.id), [next.id, q.id], "newest first");
  assert.equal((await rpc({ jsonrpc: "2.0", id: 13, method: "ListTasks", params: {} })).json.error.code, -32602);
  r = await rpc({ jsonrpc: "2.0", id: 14, method: "GetTask", params: { id: a.id, historyLength: 0 } });
  assert.equal(r.json.result.history, undefined);
  // Another agent's message (lineage in metadata): the session's reply carries its own lineage,
  // one hop deeper; a forged depth past agent.max_agent_depth gets no reply at all.
  const L = "https://parley.dev/a2a/lineage/v1";
  const fromAgent = (id, depth) => ({ jsonrpc: "2.0", id, method: "SendMessage", params: { message: {
    messageId: randomUUID(), role: "ROLE_USER", parts: [{ text: "hi" }],
    metadata: { [L]: { id: randomUUID(), correlation_id: "c1", sender: { agent: "peer", session: "s" }, depth } } } } });
  r = await rpc(fromAgent(15, 3));
  const part = r.json.result.task.artifacts[0].parts[0];
  assert.equal(part.text, "echo: hi (agent)");
  assert.equal(part.metadata[L].depth, 4);
  assert.equal(part.metadata[L].correlation_id, "c1");
  r = await rpc(fromAgent(16, 1000));
  assert.equal(r.json.result.task.status.state, "TASK_STATE_COMPLETED");
  assert.equal(r.json.result.task.artifacts, undefined, "the loop guard kept the reply");
  r = await rpc({ jsonrpc: "2.0", id: 17, method: "SendMessage", params: { message: {
    messageId: "m", role: "ROLE_USER", parts: [{ text: "x" }], metadata: { [L]: { depth: 1 } } } } });
  assert.equal(r.json.error.code, -32602, "a lineage without an id is refused");
  // Still serving.
  assert.deepEqual(replies(await client.sendMessage({ message: userText("still there?") })), ["echo: still there?"]);
  console.log("errors ok");
  console.log("PASS");
} catch (e) {
  failed = true;
  console.error("FAIL:", e);
  console.error("agent log:\n" + log());
} finally {
  proc.kill("SIGTERM");
  const e = await exited;
  clearTimeout(watchdog);
  if (!failed && e.code !== 0) { console.error("the agent exited with", e); failed = true; }
}
process.exit(failed ? 1 : 0);
