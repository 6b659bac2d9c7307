#include <parley/platforms/config_keys.hpp>

namespace parley::platforms {

void declare_config(config& cfg) {
  using t = config_type;
  // The defaults match websocket_options' (websocket_platform.hpp).
  cfg.declare("platforms.console.enabled", t::boolean, false, "talk to the agent on stdin/stdout");
  cfg.declare("platforms.websocket.enabled", t::boolean, true, "serve the WebSocket platform");
  cfg.declare("platforms.websocket.host", t::string, "127.0.0.1", "address to listen on");
  cfg.declare("platforms.websocket.port", t::integer, 8765, "port to listen on (0 = any)");
  cfg.declare("platforms.websocket.max_size", t::integer, 1 << 20, "largest frame in bytes");
  cfg.declare("platforms.websocket.origins", t::string_list, json::array(),
              "allowed Origin headers; empty = any");
  cfg.declare("platforms.websocket.token", t::string, "", "bearer token clients must send");
  cfg.declare("platforms.websocket.max_file_size", t::integer, 1 << 20,
              "largest user_file in bytes (decoded)");
  cfg.declare("platforms.websocket.max_connections", t::integer, 10000,
              "open WebSocket connections; over it the handshake gets 503");
  cfg.declare("platforms.websocket.rate_limit", t::number, 20.0,
              "messages per second a connection may send; 0 = no limit");
  cfg.declare("platforms.websocket.rate_burst", t::integer, 40,
              "messages a connection may send at once before the rate limit applies");
  cfg.declare("platforms.websocket.send_buffer", t::integer, 4 << 20,
              "bytes of replies queued per connection; a client that does not read is closed "
              "(1008) past it");
  cfg.declare("platforms.websocket.send_timeout", t::number, 30.0,
              "seconds a connection with replies queued may go without the socket taking any "
              "(1008 after)");
  cfg.declare("platforms.websocket.handshake_timeout", t::number, 10.0,
              "seconds for the HTTP request, TLS and WebSocket handshakes and the close");
  cfg.declare("platforms.websocket.idle_timeout", t::number, 60.0,
              "seconds without data before a connection is closed (pinged at half)");
  cfg.declare("platforms.websocket.tls_cert", t::string, "",
              "PEM certificate chain; with tls_key the server speaks https/wss");
  cfg.declare("platforms.websocket.tls_key", t::string, "", "PEM private key of tls_cert");
  cfg.declare("platforms.websocket.forward", t::boolean, true,
              "several nodes on one database: relay a client whose session another node owns "
              "to that node (else 503 naming it); not with TLS");
  cfg.declare("platforms.websocket.advertise", t::string, "",
              "host:port the other nodes reach this one at; empty = host and the bound port");
  // Its default depends on the host: websocket_options::from_config reads it only when set.
  cfg.declare("platforms.websocket.inspector", t::boolean, true,
              "serve the web inspector at /inspect (it reads the --db file); when not set: on "
              "for a loopback host (the default), off otherwise");
  // A2A, on the WebSocket platform's port; defaults match a2a_options'.
  cfg.declare("platforms.a2a.enabled", t::boolean, true,
              "serve the A2A agent card and JSON-RPC on the WebSocket port, and let sessions ask "
              "other A2A agents");
  cfg.declare("platforms.a2a.path", t::string, "/a2a", "where A2A JSON-RPC is served");
  cfg.declare("platforms.a2a.url", t::string, "",
              "the JSON-RPC URL the agent card announces; empty = from the request's Host");
  cfg.declare("platforms.a2a.name", t::string, "", "the agent card's name; empty = the agent's");
  cfg.declare("platforms.a2a.description", t::string, "A Parley agent",
              "the agent card's description");
  cfg.declare("platforms.a2a.version", t::string, "1.0.0", "the agent's version on its card");
  cfg.declare("platforms.a2a.skills", t::string_list, json::array(),
              "the card's skills, 'name: description' each; empty = one per intent");
  cfg.declare("platforms.a2a.input_required_states", t::string_list, json::array(),
              "states in which the agent waits for an answer: a turn ending there leaves its "
              "A2A task INPUT_REQUIRED instead of COMPLETED");
  cfg.declare("platforms.a2a.max_body", t::integer, 1 << 20,
              "largest A2A request body in bytes (413 past it)");
  cfg.declare("platforms.a2a.max_tasks", t::integer, 10000,
              "A2A tasks kept in memory; the oldest ended ones are forgotten first");
  cfg.declare("platforms.a2a.wait_timeout", t::number, 60.0,
              "seconds a blocking SendMessage waits for its turn to end before answering the "
              "task as it stands");
  cfg.declare("platforms.a2a.client_timeout", t::number, 30.0,
              "seconds one A2A request to another agent may take (card, send, stream)");
  cfg.declare("platforms.a2a.card_ttl", t::number, 300.0,
              "seconds a fetched agent card is reused");
  cfg.declare("platforms.a2a.max_response", t::integer, 4 << 20,
              "largest answer or stream event accepted from another A2A agent, bytes");
  cfg.declare("platforms.a2a.max_idle_connections", t::integer, 100,
              "idle keep-alive connections kept per A2A peer (scheme://host:port) for the next "
              "request; 0 = a new connection for every request");
  cfg.declare("platforms.a2a.idle_connection_timeout", t::number, 4.0,
              "seconds an idle connection to an A2A peer is kept (less if the peer's Keep-Alive "
              "header says it closes sooner)");
  // Links to other agents (session::send_to_agent); defaults match websocket_agent_options'.
  cfg.declare("platforms.websocket_agents.queue_limit", t::integer, 256,
              "messages waiting per link to another agent; beyond it they fail (agent_error)");
  cfg.declare("platforms.websocket_agents.connect_timeout", t::number, 5.0,
              "seconds for the TCP, TLS and WebSocket handshakes with another agent");
  cfg.declare("platforms.websocket_agents.reconnect_attempts", t::integer, 3,
              "failed connects in a row before the waiting messages fail");
  cfg.declare("platforms.websocket_agents.backoff", t::number, 0.2,
              "seconds before the first reconnect (doubling, at most 5 s)");
  cfg.declare("platforms.websocket_agents.token", t::string, "",
              "bearer token sent to other agents (Authorization header)");
  cfg.declare("platforms.websocket_agents.tls_verify", t::boolean, true,
              "wss://: verify other agents' certificates");
  // Traces over OTLP/HTTP (otlp_exporter.hpp); defaults match otlp_options'.
  cfg.declare("telemetry.otlp_endpoint", t::string, "",
              "OpenTelemetry collector to export each turn's trace to over OTLP/HTTP JSON, e.g. "
              "http://127.0.0.1:4318 (/v1/traces is appended); empty = no traces");
  cfg.declare("telemetry.service_name", t::string, "",
              "service.name of the exported traces; empty = the agent's name");
  cfg.declare("telemetry.queue_capacity", t::integer, 4096,
              "spans waiting for export; beyond it new spans are dropped (and counted)");
  cfg.declare("telemetry.batch_size", t::integer, 512, "spans per export request at most");
  cfg.declare("telemetry.batch_interval", t::number, 1.0,
              "seconds queued spans wait at most before they are sent");
  cfg.declare("telemetry.export_timeout", t::number, 5.0,
              "seconds one export request may take; its spans are dropped after");
  cfg.declare("telemetry.shutdown_timeout", t::number, 2.0,
              "seconds the agent's stop gives the last export requests");
  cfg.declare("telemetry.capture_content", t::boolean, false,
              "put message text, model input and output, tool arguments and results in spans "
              "(they may hold personal data)");
}

}  // namespace parley::platforms
