// An A2A v1.0 agent made with @a2a-js/sdk 1.3.0 + express, for testing Parley's client.
// startEchoAgents(port = 0) listens on 127.0.0.1 and returns its base URL. Under it:
//   /              streaming card; "never ..." is accepted and never answered; anything else:
//                  task -> WORKING -> artifact [echo: TEXT, {length, turn}] -> COMPLETED ("done")
//   /nostream/     the same agent with capabilities.streaming false (the client must SendMessage)
//   /notacard/     a BAF-style card (not A2A)
//   /garbage/      an A2A card whose JSON-RPC endpoint answers garbage
import express from "express";
import { randomUUID } from "node:crypto";
import { AGENT_CARD_PATH, Role, TaskState } from "@a2a-js/sdk";
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from "@a2a-js/sdk/server";
import { agentCardHandler, jsonRpcHandler, UserBuilder } from "@a2a-js/sdk/server/express";

const textOf = (m) => m.parts.filter((p) => p.content?.$case === "text").map((p) => p.content.value).join(" ");
const textPart = (s) => ({ content: { $case: "text", value: s }, mediaType: "text/plain", filename: "", metadata: undefined });
const dataPart = (v) => ({ content: { $case: "data", value: v }, mediaType: "application/json", filename: "", metadata: undefined });
const agentMsg = (taskId, contextId, parts) => ({ messageId: randomUUID(), role: Role.ROLE_AGENT, parts, taskId, contextId,
  metadata: undefined, extensions: [], referenceTaskIds: [] });
const status = (taskId, contextId, state, message) => AgentEvent.statusUpdate({ taskId, contextId, metadata: undefined,
  status: { state, message, timestamp: new Date().toISOString() } });

class Echo {
  // What the last message carried in its metadata (Parley's lineage), for the test to check.
  lastMetadata = null;
  async execute(ctx, bus) {
    const { taskId, contextId } = ctx;
    const input = textOf(ctx.userMessage);
    this.lastMetadata = ctx.userMessage.metadata ?? null;
    bus.publish(AgentEvent.task(ctx.task ?? { id: taskId, contextId, artifacts: [], history: [ctx.userMessage], metadata: undefined,
      status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: new Date().toISOString() } }));
    bus.publish(status(taskId, contextId, TaskState.TASK_STATE_WORKING, undefined));
    if (input.startsWith("never")) return new Promise(() => {});  // never answers
    bus.publish(AgentEvent.artifactUpdate({ taskId, contextId, append: false, lastChunk: true, metadata: undefined,
      artifact: { artifactId: randomUUID(), name: "echo", description: "", metadata: undefined, extensions: [],
        parts: [textPart(`echo: ${input}`), dataPart({ length: input.length })] } }));
    bus.publish(status(taskId, contextId, TaskState.TASK_STATE_COMPLETED, agentMsg(taskId, contextId, [textPart("done")])));
  }
  async cancelTask(taskId, bus) { bus.publish(status(taskId, "", TaskState.TASK_STATE_CANCELED, undefined)); }
}

export async function startEchoAgents(port = 0) {
  const app = express();
  const server = await new Promise((resolve) => { const s = app.listen(port, "127.0.0.1", () => resolve(s)); });
  const base = `http://127.0.0.1:${server.address().port}`;
  const echo = new Echo();
  const mount = (prefix, streaming) => {
    const card = {
      name: `SDK Echo${prefix}`, description: "echo", version: "0.1.0",
      supportedInterfaces: [{ url: `${base}${prefix}/rpc`, protocolBinding: "JSONRPC", protocolVersion: "1.0", tenant: "" }],
      capabilities: { streaming, pushNotifications: false, extensions: [], extendedAgentCard: false },
      securitySchemes: {}, securityRequirements: [], defaultInputModes: ["text/plain"], defaultOutputModes: ["text/plain"],
      skills: [{ id: "echo", name: "Echo", description: "echo", tags: ["echo"], examples: [] }], signatures: [],
    };
    const requestHandler = new DefaultRequestHandler(card, new InMemoryTaskStore(), echo);
    app.use(`${prefix}/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: requestHandler }));
    app.use(`${prefix}/rpc`, jsonRpcHandler({ requestHandler, userBuilder: UserBuilder.noAuthentication }));
  };
  mount("", true);
  mount("/nostream", false);
  app.get(`/notacard/${AGENT_CARD_PATH}`, (req, res) => res.json({ name: "baf", endpoints: ["/a2a"], skills: ["x"] }));
  app.get(`/garbage/${AGENT_CARD_PATH}`, (req, res) => res.json({
    name: "garbage", description: "", version: "1", capabilities: { streaming: false }, skills: [],
    supportedInterfaces: [{ url: `${base}/garbage/rpc`, protocolBinding: "JSONRPC", protocolVersion: "1.0" }] }));
  app.post("/garbage/rpc", (req, res) => res.type("text/plain").send("hello, I am not JSON-RPC"));
  return { base, echo, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) };
}
