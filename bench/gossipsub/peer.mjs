// One libp2p gossipsub peer for the propagation baseline (bench/gossipsub.ts).
//
// It listens on a WebSocket address on 127.0.0.1 and takes commands, one
// JSON object per line, on standard input: {"cmd":"dial","addr":…},
// {"cmd":"publish","id":…,"bytes":N}, {"cmd":"stats"} and {"cmd":"stop"}.
// It reports on standard output, one JSON object per line: "listening" with
// its address, "published", "message" for each first delivery, "stats" with
// the RPC frames and bytes it received, and "error".
//
// Runs on Node.js 20 with --experimental-websocket (the transport dials with
// the global WebSocket). Promise.withResolvers is a Node.js 22 API that the
// libp2p packages call, so a stand-in is installed when it is missing.

import { createLibp2p } from "libp2p";
import { webSockets } from "@libp2p/websockets";
import { plaintext } from "@libp2p/plaintext";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { gossipsub } from "@libp2p/gossipsub";
import { multiaddr } from "@multiformats/multiaddr";
import { createInterface } from "node:readline";

if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((yes, no) => {
      resolve = yes;
      reject = no;
    });
    return { promise, resolve, reject };
  };
}

const TOPIC = "config";

function report(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

// Every peer runs on 127.0.0.1. Gossipsub's peer score penalises more than
// 10 peers on one IP address (IPColocationFactorThreshold), which on one
// machine would push peers out of each other's meshes from N = 20 on, and
// libp2p accepts 5 connections a second from one host by default. Both are
// turned off here; the mesh settings keep their defaults.
const node = await createLibp2p({
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0/ws"] },
  transports: [webSockets()],
  connectionEncrypters: [plaintext()],
  streamMuxers: [yamux()],
  connectionManager: { inboundConnectionThreshold: 10_000 },
  services: {
    identify: identify(),
    pubsub: gossipsub({ scoreParams: { IPColocationFactorWeight: 0 } }),
  },
});
const pubsub = node.services.pubsub;

// Count every RPC frame this peer decodes, control-only frames included.
const stats = { rpcs: 0, bytes: 0, messages: 0 };
const decodeRpc = pubsub.decodeRpc.bind(pubsub);
pubsub.decodeRpc = (bytes) => {
  const rpc = decodeRpc(bytes);
  stats.rpcs++;
  stats.bytes += bytes.length;
  stats.messages += rpc.messages?.length ?? 0;
  return rpc;
};

pubsub.subscribe(TOPIC);
pubsub.addEventListener("message", (event) => {
  if (event.detail.topic !== TOPIC) return;
  const text = new TextDecoder().decode(event.detail.data);
  report({ type: "message", id: text.slice(0, text.indexOf(" ")) });
});

report({
  type: "listening",
  peer: node.peerId.toString(),
  addr: node.getMultiaddrs()[0].toString(),
});

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let command;
  try {
    command = JSON.parse(line);
  } catch {
    report({ type: "error", message: `invalid command line: ${line}` });
    continue;
  }
  try {
    if (command.cmd === "dial") {
      await node.dial(multiaddr(command.addr));
      report({ type: "dialed", addr: command.addr });
    } else if (command.cmd === "publish") {
      const head = `${command.id} `;
      const data = new TextEncoder().encode(
        head + "x".repeat(Math.max(0, command.bytes - head.length)),
      );
      await pubsub.publish(TOPIC, data);
      report({ type: "published", id: command.id });
    } else if (command.cmd === "stats") {
      report({
        type: "stats",
        ...stats,
        meshPeers: pubsub.getMeshPeers(TOPIC).length,
        connections: node.getConnections().length,
      });
    } else if (command.cmd === "stop") {
      break;
    }
  } catch (error) {
    report({ type: "error", message: String(error?.message ?? error) });
  }
}
await node.stop();
process.exit(0);
