// A webhook receiver for identify-bridge's signed deliveries, verifying with an implementation
// that is not ours: the `standardwebhooks` npm package (the Standard Webhooks reference library).
//
// RECEIVER_SECRETS (JSON) maps a path to the one secret that path's receiver knows, e.g.
// {"/old": "whsec_…", "/new": "whsec_…"}. A POST there is verified: 204 when the signature, id
// and timestamp hold, else 400 with the library's reason. Every POST is recorded; GET
// /__received answers them all: [{path, verified, error, headers, body}] (webhook-* headers,
// the raw body as text). Prints one JSON line to stdout when ready: {"port":PORT}. Exits when
// stdin closes (the test died).

import * as http from 'node:http';
import { Webhook } from 'standardwebhooks';

const secrets = JSON.parse(process.env.RECEIVER_SECRETS || '{}');
const received = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://receiver');
    if (req.method === 'GET' && url.pathname === '/__received') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(received));
      return;
    }
    const secret = secrets[url.pathname];
    if (req.method !== 'POST' || secret === undefined) {
      res.writeHead(404).end();
      return;
    }
    const headers = {};
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      if (req.headers[name] !== undefined) headers[name] = req.headers[name];
    }
    let verified = false;
    let error = null;
    try {
      new Webhook(secret).verify(body, headers);
      verified = true;
    } catch (e) {
      error = e.message;
    }
    received.push({ path: url.pathname, verified, error, headers, body });
    if (verified) {
      res.writeHead(204).end();
    } else {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error }));
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
