// A relay agent made with @a2a-js/sdk 1.3.0 (server + the SDK's own client), for bench_a2a's
// SDK pair: every message it gets is passed to another A2A agent (the SDK echo agent), and its
// task is answered with the text parts of that agent's reply (an artifact), then COMPLETED.
// Each relay context keeps one context on the far agent, as Parley's session.ask_agent does.
// startRelayAgent(port, farBase, { stream = true }) listens on 127.0.0.1 and returns its base
// URL; with stream the far agent is asked with sendMessageStream (what Parley's client does
// when the card offers streaming), else with sendMessage.
import express from "express";
import { randomUUID } from "node:crypto";
import { AGENT_CARD_PATH, Role, TaskState } from "@a2a-js/sdk";
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from "@a2a-js/sdk/server";
import { agentCardHandler, jsonRpcHandler, UserBuilder } from "@a2a-js/sdk/server/express";
import { ClientFactory, ClientFactoryOptions } from "@a2a-js/sdk/client";

const textOf = (m) => m.parts.filter((p) => p.content?.$case === "text").map((p) => p.content.value).join(" ");
const textPart = (s) => ({ content: { $case: "text", value: s }, mediaType: "text/plain", filename: "", metadata: undefined });
const userMsg = (text, contextId) => ({ messageId: randomUUID(), role: Role.ROLE_USER, parts: [textPart(text)],
  contextId: contextId ?? "", taskId: "", metadata: undefined, extensions: [], referenceTaskIds: [] });
const textsOf = (parts) => parts.filter((p) => p.content?.$case === "text").map((p) => p.content.value);

class Relay {
  constructor(client, stream) { this.client = client; this.stream = stream; this.far = new Map(); }
  async execute(ctx, bus) {
    const { taskId, contextId } = ctx;
    bus.publish(AgentEvent.task(ctx.task ?? { id: taskId, contextId, artifacts: [], history: [ctx.userMessage], metadata: undefined,
      status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: new Date().toISOString() } }));
    const msg = userMsg(textOf(ctx.userMessage), this.far.get(contextId));
    const texts = [];
    let farContext;
    if (this.stream) {
      for await (const ev of this.client.sendMessageStream({ message: msg })) {
        const { $case, value } = ev.payload;
        if ($case === "artifactUpdate") texts.push(...textsOf(value.artifact.parts));
        if ($case === "task" || $case === "statusUpdate") farContext = value.contextId || farContext;
        if ($case === "message") { texts.push(...textsOf(value.parts)); farContext = value.contextId; }
      }
    } else {
      const r = await this.client.sendMessage({ message: msg });
      farContext = r.contextId;
      for (const a of r.artifacts ?? []) texts.push(...textsOf(a.parts));
      if (!r.artifacts) texts.push(...textsOf(r.parts ?? []));
    }
    if (farContext) this.far.set(contextId, farContext);
    bus.publish(AgentEvent.artifactUpdate({ taskId, contextId, append: false, lastChunk: true, metadata: undefined,
      artifact: { artifactId: randomUUID(), name: "relay", description: "", metadata: undefined, extensions: [],
        parts: texts.map(textPart) } }));
    bus.publish(AgentEvent.statusUpdate({ taskId, contextId, metadata: undefined,
      status: { state: TaskState.TASK_STATE_COMPLETED, message: undefined, timestamp: new Date().toISOString() } }));
  }
  async cancelTask() {}
}

export async function startRelayAgent(port, farBase, { stream = true } = {}) {
  const client = await new ClientFactory(ClientFactoryOptions.default).createFromUrl(farBase);
  const app = express();
  const server = await new Promise((resolve) => { const s = app.listen(port, "127.0.0.1", () => resolve(s)); });
  const base = `http://127.0.0.1:${server.address().port}`;
  const card = {
    name: "SDK Relay", description: "relays to another agent", version: "0.1.0",
    supportedInterfaces: [{ url: `${base}/rpc`, protocolBinding: "JSONRPC", protocolVersion: "1.0", tenant: "" }],
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {}, securityRequirements: [], defaultInputModes: ["text/plain"], defaultOutputModes: ["text/plain"],
    skills: [{ id: "relay", name: "Relay", description: "relay", tags: ["relay"], examples: [] }], signatures: [],
  };
  const requestHandler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new Relay(client, stream));
  app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: requestHandler }));
  app.use("/rpc", jsonRpcHandler({ requestHandler, userBuilder: UserBuilder.noAuthentication }));
  return { base, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) };
}
