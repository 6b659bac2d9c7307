// A small MCP stdio server for the cases the npm servers cannot show: tools/list in pages,
// names the OpenAI format forbids, a server that exits, writes garbage or never answers in
// the middle of a call, requests from the server to the client, and its environment.
// Usage: node mcp_peer.mjs [stubborn]   (stubborn: ignores stdin's end and SIGTERM)
import readline from 'node:readline';

const stubborn = process.argv[2] === 'stubborn';
const clientAnswers = [];  // what the client answered to our requests
let nextId = 1000;

const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
const text = (t) => ({ content: [{ type: 'text', text: t }] });

const pages = [
  [{ name: 'echo', description: 'Echoes', inputSchema: { type: 'object', properties: { message: { type: 'string' } } } },
   { name: 'a.b', inputSchema: { type: 'object' } }],
  [{ name: 'a_b', inputSchema: { type: 'object' } },
   { name: 'x'.repeat(80), description: 'long', inputSchema: { type: 'object' } }],
  [{ name: 'exit', inputSchema: { type: 'object' } },
   { name: 'garbage', inputSchema: { type: 'object' } },
   { name: 'silent', inputSchema: { type: 'object' } },
   { name: 'env', inputSchema: { type: 'object' } },
   { name: 'ask_client', inputSchema: { type: 'object' } },
   { name: 'client_answers', inputSchema: { type: 'object' } },
   { name: 'blocks', inputSchema: { type: 'object' } }],
];

function call(id, name, args) {
  switch (name) {
    case 'echo': return send({ jsonrpc: '2.0', id, result: text('Echo: ' + args.message) });
    case 'exit':
      process.stderr.write('peer: exiting on purpose\n');
      return process.exit(3);
    case 'garbage': return process.stdout.write('this is not json\n');
    case 'silent': return;  // never answers
    case 'env': return send({ jsonrpc: '2.0', id, result: text(JSON.stringify(process.env)) });
    case 'ask_client':
      send({ jsonrpc: '2.0', id: nextId++, method: 'ping' });
      send({ jsonrpc: '2.0', id: nextId++, method: 'roots/list', params: {} });
      send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'hi' } });
      send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
      return send({ jsonrpc: '2.0', id, result: text('asked') });
    case 'client_answers': return send({ jsonrpc: '2.0', id, result: text(JSON.stringify(clientAnswers)) });
    case 'blocks':
      return send({ jsonrpc: '2.0', id, result: {
        content: [
          { type: 'text', text: 'first' },
          { type: 'image', data: 'AAAA', mimeType: 'image/png' },
          { type: 'resource', resource: { uri: 'file:///a.txt', mimeType: 'text/plain', text: 'inside' } },
          { type: 'resource_link', uri: 'file:///b', name: 'b' },
        ],
        structuredContent: { n: 1 } } });
    default:
      return send({ jsonrpc: '2.0', id, error: { code: -32602, message: 'Unknown tool: ' + name } });
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method === undefined) { clientAnswers.push(m); return; }  // an answer to our request
  if (m.id === undefined) return;  // notifications
  if (m.method === 'initialize')
    return send({ jsonrpc: '2.0', id: m.id, result: {
      protocolVersion: m.params.protocolVersion, capabilities: { tools: {} },
      serverInfo: { name: 'parley-test-peer', version: '1.0.0' }, instructions: 'be nice' } });
  if (m.method === 'tools/list') {
    const page = m.params && m.params.cursor ? Number(m.params.cursor) : 0;
    const result = { tools: pages[page] };
    if (page + 1 < pages.length) result.nextCursor = String(page + 1);
    return send({ jsonrpc: '2.0', id: m.id, result });
  }
  if (m.method === 'tools/call') return call(m.id, m.params.name, m.params.arguments || {});
  send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
});
if (stubborn) {
  process.on('SIGTERM', () => process.stderr.write('peer: ignoring SIGTERM\n'));
  setInterval(() => {}, 1000);  // stays up after stdin ends
} else {
  rl.on('close', () => process.exit(0));
}
