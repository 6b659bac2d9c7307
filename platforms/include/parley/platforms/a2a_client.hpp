#pragma once
/// The A2A client behind session::ask_agent(url, message): the "a2a" agent transport.
///
/// For each message it resolves the peer's agent card (GET {url's folder}/.well-known/
/// agent-card.json, kept for platforms.a2a.card_ttl), checks that it is an A2A v1.0 card with
/// a JSON-RPC interface, and sends the message with SendStreamingMessage when the card offers
/// streaming, else SendMessage, carrying the session's lineage in Message.metadata (key
/// "https://parley.dev/a2a/lineage/v1"). Each request is bounded by platforms.a2a.client_timeout.
/// What comes back reaches the session as events that are not a human's, whose sender() is
/// `url`: every part of an artifact, of a status message or of a direct Message reply as a
/// text, JSON or file event (with the peer's lineage when it sent one, else a lineage caused
/// by the message sent, depth + 1), and the task's last state as the custom event
/// "a2a_status" {url, task_id, context_id, state}. A follow-up ask to the same URL from the same
/// session continues the peer's context (and the task it left INPUT_REQUIRED). A card that is
/// not A2A, an HTTP error, a JSON-RPC error, an answer that is not A2A, and a timeout each
/// become an `agent_error` event naming the URL and the reason.
///
/// Requests go over keep-alive connections, pooled per peer origin (scheme://host:port): at most
/// platforms.a2a.max_idle_connections idle ones, each closed after
/// platforms.a2a.idle_connection_timeout. A pooled connection the peer closed while it was idle
/// is retried once on a fresh one; no other failure is retried. An A2A task served by this
/// agent whose session asked another agent ends once that agent's answer is in and handled.
///
/// A token for the peer may ride in the URL (?token=...): it is sent as a bearer token and
/// never logged. Safe from any thread; its I/O runs on strands of the agent's io_context.
#include <memory>

#include <parley/agent.hpp>
#include <parley/platforms/websocket_platform.hpp>

namespace parley::platforms {

/// The A2A client as an agent transport for `owner` (not registered).
std::shared_ptr<agent_transport> make_a2a_transport(agent& owner, a2a_options options = {});

/// Registers the A2A client as `owner`'s "a2a" transport. The WebSocket platform does this
/// when it starts with platforms.a2a.enabled; call it for an agent without that platform.
void use_a2a_agents(agent& owner, a2a_options options = {});

}  // namespace parley::platforms
