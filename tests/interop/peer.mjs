// A js-libp2p peer, on its stack's defaults (TCP, noise, yamux, identify, ping, gossipsub with
// signed messages), joining a meshmind network. It prints one JSON line per thing it observed,
// so a test can check each; it stops by itself within --seconds.
//
//   node peer.mjs --dial <multiaddr/p2p/id> --network <tag> --subnet 1 [--find <another node's id>]
//                 [--publish-topic tx --publish-hex <bytes>] [--seconds 60]
// js-libp2p 3 uses Promise.withResolvers (Node.js 22); on Node.js 20 it is added here.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((yes, no) => { resolve = yes; reject = no; });
    return { promise, resolve, reject };
  };
}
import { parseArgs } from "node:util";
import { createLibp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { kadDHT } from "@libp2p/kad-dht";
import { gossipsub } from "@libp2p/gossipsub";
import { multiaddr } from "@multiformats/multiaddr";
import { peerIdFromString } from "@libp2p/peer-id";

const { values: args } = parseArgs({
  options: {
    dial: { type: "string" },
    network: { type: "string" },
    subnet: { type: "string", default: "1" },
    find: { type: "string" },
    "publish-topic": { type: "string" },
    "publish-hex": { type: "string" },
    seconds: { type: "string", default: "60" },
  },
});
const say = (event, fields) => console.log(JSON.stringify({ event, ...fields }));
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const deadline = Date.now() + Number(args.seconds) * 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const bounded = (promise, what) =>
  Promise.race([promise, sleep(Math.max(0, deadline - Date.now())).then(() => { throw new Error(`${what}: out of time`); })]);

// The only meshmind-specific settings: Kademlia under the network's protocol name (served, so the
// node sees this peer speaks it) and the network's topic names.
const topic = (name) => `meshmind/${args.network}/${name}`;
const node = await createLibp2p({
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({ protocol: `/meshmind/${args.network}/kad/1`, clientMode: false }),
    pubsub: gossipsub(),
  },
});
say("started", { peer_id: node.peerId.toString() });

let failed = false;
try {
  const target = multiaddr(args.dial);
  const identified = new Promise((resolve) =>
    node.addEventListener("peer:identify", (event) => resolve(event.detail)),
  );
  await bounded(node.dial(target), "dial");
  const info = await bounded(identified, "identify");
  say("identify", {
    peer_id: info.peerId.toString(),
    agent_version: info.agentVersion,
    protocol_version: info.protocolVersion,
    protocols: info.protocols,
  });

  const rtt = await bounded(node.services.ping.ping(target), "ping");
  say("ping", { rtt_ms: rtt });

  // Kademlia under the network's protocol name: another node found by its id through the node's
  // answers. The DHT holds its queries until its routing table has a peer, so it is asked again
  // until then.
  if (args.find) {
    const started = Date.now();
    let found;
    for (let attempt = 1; found === undefined; attempt++) {
      try {
        found = await node.peerRouting.findPeer(peerIdFromString(args.find), { signal: AbortSignal.timeout(5_000) });
        say("kad-find", { peer_id: found.id.toString(), addrs: found.multiaddrs.map(String), attempt, ms: Date.now() - started });
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`find peer: ${error}`);
      }
    }
  }

  // Gossip: a subnet's capability ads, as the network signs them.
  const caps = topic(`caps/${args.subnet}`);
  const ad = new Promise((resolve) =>
    node.services.pubsub.addEventListener("message", (event) => {
      if (event.detail.topic === caps) resolve(event.detail);
    }),
  );
  node.services.pubsub.subscribe(caps);
  const message = await bounded(ad, "a capability ad");
  say("gossip", { topic: message.topic, from: message.from?.toString(), data: hex(message.data) });

  if (args["publish-topic"]) {
    const name = topic(args["publish-topic"]);
    node.services.pubsub.subscribe(name);
    // Wait until the node's subscription is known and the mesh has formed.
    while (node.services.pubsub.getSubscribers(name).length === 0 || node.services.pubsub.getMeshPeers(name).length === 0) {
      if (Date.now() > deadline) throw new Error(`no peer on ${name} in time`);
      await sleep(200);
    }
    const result = await bounded(node.services.pubsub.publish(name, Buffer.from(args["publish-hex"], "hex")), "publish");
    say("published", { topic: name, recipients: result.recipients.map(String) });
  }
} catch (error) {
  failed = true;
  say("error", { message: String(error?.stack || error) });
} finally {
  await node.stop();
  say("stopped", {});
  process.exit(failed ? 1 : 0);
}
