// ioredis against pubgate: subscribe, pattern-subscribe, publish, unsubscribe.
//
//   npm ci && node pubsub.js 127.0.0.1 6380 alice alice-secret [CA_FILE [CERT_FILE KEY_FILE]]
//
// With CA_FILE (pubgate's local CA certificate, for example), the connection
// uses TLS and verifies pubgate's certificate against it; with CERT_FILE and
// KEY_FILE it also presents a client certificate (mTLS).
//
// Prints "ok" and exits 0 when every step behaved as it does against Redis.
"use strict";
const fs = require("node:fs");
const net = require("node:net");
const Redis = require("ioredis");
const assert = require("node:assert/strict");

const [host, port, username, password, caFile, certFile, keyFile] = process.argv.slice(2);
const options = { host, port: Number(port), username, password, maxRetriesPerRequest: 1 };
// Node verifies an IP address against the certificate's IP SANs by itself.
if (caFile) options.tls = { ca: fs.readFileSync(caFile), servername: net.isIP(host) ? undefined : host };
if (certFile) Object.assign(options.tls, { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) });

async function waitFor(cond, what) {
  const deadline = Date.now() + 20000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function main() {
  const sub = new Redis(options); // ioredis checks INFO before it is ready
  const pub = new Redis(options);
  const got = [];
  sub.on("message", (channel, message) => got.push(["message", channel, message]));
  sub.on("pmessage", (pattern, channel, message) => got.push(["pmessage", pattern, channel, message]));

  assert.equal(await sub.subscribe("orders"), 1);
  assert.equal(await sub.psubscribe("orders.*"), 2);
  assert.equal(await pub.publish("orders", "hello"), 1);
  assert.equal(await pub.publish("orders.created", "o-1"), 1);
  await waitFor(() => got.length === 2, "two messages");
  assert.deepEqual(got, [
    ["message", "orders", "hello"],
    ["pmessage", "orders.*", "orders.created", "o-1"],
  ]);
  assert.deepEqual(await pub.pubsub("NUMSUB", "orders"), ["orders", 1]);

  await sub.unsubscribe("orders");
  await sub.punsubscribe("orders.*");
  assert.equal(await pub.publish("orders", "gone"), 0);
  sub.disconnect();
  pub.disconnect();
  console.log("ok");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
