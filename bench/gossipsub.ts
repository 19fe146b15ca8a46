/**
 * Propagation on js-libp2p gossipsub, the real-peer baseline: the same
 * workload as propagation.ts (one publisher per update, rotating; 200-byte
 * messages; time until every other peer has it) on N peers of
 * `@libp2p/gossipsub` 17.1 with default mesh settings, over WebSockets on
 * 127.0.0.1.
 *
 * Each peer is a Node.js process running `gossipsub/peer.mjs`. The peer's
 * packages are installed with npm into a temporary folder at bench time,
 * from `gossipsub/package.json` (exact versions), and deleted afterwards.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { summarize, type Summary } from "./propagation.ts";

const PEER_DIR = fileURLToPath(new URL("./gossipsub/", import.meta.url));
/** Links each peer dials, so that every peer can fill a mesh of degree 6. */
const DIALS_PER_PEER = 6;
/** Peers started at once; more at a time overload two cores. */
const START_BATCH = 10;

/** Results of one fleet size. */
export interface GossipsubResult {
  readonly size: number;
  readonly updates: number;
  readonly latency: Summary;
  /** RPC frames received per peer per update, control frames included. */
  readonly framesPerPeer: number;
  /** Bytes of RPC frames received per peer per update. */
  readonly bytesPerPeer: number;
  /** Message copies received per peer per update; 1 is no duplicate. */
  readonly copiesPerPeer: number;
  /** Fewest mesh peers any peer had when the updates started. */
  readonly minMeshPeers: number;
  readonly nodeVersion: string;
}

interface PeerStats {
  rpcs: number;
  bytes: number;
  messages: number;
  meshPeers: number;
  connections: number;
}

type Report =
  | { type: "listening"; peer: string; addr: string }
  | { type: "message"; id: string }
  | { type: "published"; id: string }
  | { type: "dialed"; addr: string }
  | ({ type: "stats" } & PeerStats)
  | { type: "error"; message: string };

async function run(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
): Promise<string> {
  const output = await new Deno.Command(command, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = new TextDecoder().decode(output.stdout) +
    new TextDecoder().decode(output.stderr);
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${text}`);
  }
  return text.trim();
}

/**
 * Installs the peer's packages into a new temporary folder and returns it.
 * @throws when npm fails or takes longer than 3 minutes
 */
export async function installPeer(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-gossipsub-" });
  for (const file of ["package.json", "peer.mjs"]) {
    await Deno.copyFile(`${PEER_DIR}${file}`, `${dir}/${file}`);
  }
  await run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--loglevel", "error"],
    dir,
    180_000,
  );
  return dir;
}

/** One peer process and the lines it reports. */
class Peer {
  readonly index: number;
  addr = "";
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #listeners = new Set<(report: Report, atMs: number) => void>();
  readonly #reading: Promise<void>;
  readonly stderr: string[] = [];

  constructor(index: number, dir: string) {
    this.index = index;
    this.#child = new Deno.Command("node", {
      args: ["--experimental-websocket", "--no-warnings", "peer.mjs"],
      cwd: dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reading = Promise.all([
      this.#read(),
      this.#readErrors(),
    ]).then(() => {});
  }

  get pid(): number {
    return this.#child.pid;
  }

  async #read(): Promise<void> {
    let buffered = "";
    const stream = this.#child.stdout.pipeThrough(new TextDecoderStream());
    for await (const chunk of stream) {
      const atMs = performance.now();
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        let report: Report;
        try {
          report = JSON.parse(line);
        } catch {
          continue;
        }
        for (const listener of this.#listeners) listener(report, atMs);
      }
    }
  }

  async #readErrors(): Promise<void> {
    const stream = this.#child.stderr.pipeThrough(new TextDecoderStream());
    for await (const chunk of stream) this.stderr.push(chunk);
  }

  listen(listener: (report: Report, atMs: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Waits for the first report that `match` accepts, at most `timeoutMs`. */
  waitFor<T>(
    match: (report: Report) => T | undefined,
    what: string,
    timeoutMs: number,
  ): Promise<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const timer = setTimeout(() => {
      stop();
      reject(
        new Error(
          `gossipsub peer ${this.index} did not report ${what} in ${timeoutMs} ms; stderr: ${
            this.stderr.join("").slice(-2000)
          }`,
        ),
      );
    }, timeoutMs);
    const stop = this.listen((report) => {
      if (report.type === "error") {
        clearTimeout(timer);
        stop();
        reject(
          new Error(`gossipsub peer ${this.index} failed: ${report.message}`),
        );
        return;
      }
      const value = match(report);
      if (value === undefined) return;
      clearTimeout(timer);
      stop();
      resolve(value);
    });
    return promise;
  }

  async command(command: Record<string, unknown>): Promise<void> {
    await this.#writer.write(
      new TextEncoder().encode(JSON.stringify(command) + "\n"),
    );
  }

  async stats(): Promise<PeerStats> {
    const answer = this.waitFor(
      (report) => report.type === "stats" ? report : undefined,
      "stats",
      10_000,
    );
    await this.command({ cmd: "stats" });
    return await answer;
  }

  /** Asks the peer to stop; kills it after 5 s. */
  async stop(): Promise<void> {
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5000);
    try {
      await this.command({ cmd: "stop" });
      await this.#writer.close();
    } catch {
      // The process is gone already.
    }
    await this.#child.status;
    clearTimeout(timer);
    await this.#reading.catch(() => {});
  }
}

function pickOthers(index: number, size: number, count: number): number[] {
  const others = Array.from({ length: size }, (_, i) => i).filter((i) =>
    i !== index
  );
  for (let i = others.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [others[i], others[j]] = [others[j]!, others[i]!];
  }
  return others.slice(0, count);
}

/**
 * Runs the gossipsub workload on `size` peers: `updates` messages, each
 * from the next peer in turn, 30 ms apart once the last one arrived
 * everywhere, as propagation.ts does.
 */
export async function measureGossipsub(
  dir: string,
  size: number,
  updates: number,
  log: (line: string) => void = () => {},
): Promise<GossipsubResult> {
  const nodeVersion = await run("node", ["--version"], dir, 10_000);
  const peers: Peer[] = [];
  try {
    for (let start = 0; start < size; start += START_BATCH) {
      const batch: Promise<void>[] = [];
      for (let i = start; i < Math.min(size, start + START_BATCH); i++) {
        const peer = new Peer(i, dir);
        peers.push(peer);
        batch.push(
          peer.waitFor(
            (report) => report.type === "listening" ? report.addr : undefined,
            "its listening address",
            30_000,
          ).then((addr) => {
            peer.addr = addr;
          }),
        );
      }
      await Promise.all(batch);
    }

    const dialed = new Set<string>();
    for (const peer of peers) {
      for (const other of pickOthers(peer.index, size, DIALS_PER_PEER)) {
        const pair = [peer.index, other].sort((a, b) => a - b).join("-");
        if (dialed.has(pair)) continue;
        dialed.add(pair);
        const done = peer.waitFor(
          (report) => report.type === "dialed" ? true : undefined,
          `a dial of peer ${other}`,
          15_000,
        );
        await peer.command({ cmd: "dial", addr: peers[other]!.addr });
        await done;
      }
    }

    // Wait for heartbeats (1 s each) to fill every mesh to its lower bound
    // of 4. Past 30 s the run goes on if every peer has some mesh peer,
    // and the report shows the thinnest mesh.
    const meshTarget = Math.min(size - 1, 4);
    const deadline = Date.now() + 30_000;
    let minMeshPeers = 0;
    while (true) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const stats = await Promise.all(peers.map((peer) => peer.stats()));
      minMeshPeers = Math.min(...stats.map((item) => item.meshPeers));
      if (minMeshPeers >= meshTarget) break;
      if (Date.now() > deadline) {
        if (minMeshPeers > 0) break;
        throw new Error(
          `gossipsub meshes did not form in 30 s: some of the ${size} peers have no mesh peer`,
        );
      }
    }

    const arrivals = new Map<string, { left: Set<number>; lastMs: number }>();
    const waiting = new Map<string, () => void>();
    const stops = peers.map((peer) =>
      peer.listen((report, atMs) => {
        if (report.type !== "message") return;
        const arrival = arrivals.get(report.id);
        if (!arrival || !arrival.left.delete(peer.index)) return;
        arrival.lastMs = Math.max(arrival.lastMs, atMs);
        if (arrival.left.size === 0) waiting.get(report.id)?.();
      })
    );

    const before = await Promise.all(peers.map((peer) => peer.stats()));
    const samples: number[] = [];
    for (let i = 0; i < updates; i++) {
      const publisher = peers[i % size]!;
      const id = `m${i}`;
      const arrival = {
        left: new Set(
          peers.map((peer) => peer.index).filter((index) =>
            index !== publisher.index
          ),
        ),
        lastMs: 0,
      };
      arrivals.set(id, arrival);
      const all = Promise.withResolvers<void>();
      waiting.set(id, all.resolve);
      const timer = setTimeout(
        () =>
          all.reject(
            new Error(
              `gossipsub message ${id} did not reach peers ${
                [...arrival.left].join(", ")
              } in 10 s`,
            ),
          ),
        10_000,
      );
      const published = publisher.waitFor(
        (report) =>
          report.type === "published" && report.id === id
            ? performance.now()
            : undefined,
        `publication of ${id}`,
        10_000,
      );
      await publisher.command({ cmd: "publish", id, bytes: 200 });
      const ackedMs = await published;
      await all.promise.finally(() => clearTimeout(timer));
      samples.push(arrival.lastMs - ackedMs);
      arrivals.delete(id);
      waiting.delete(id);
      await new Promise((resolve) => setTimeout(resolve, 30));
      if ((i + 1) % 50 === 0) {
        log(`  N=${size} gossipsub: ${i + 1}/${updates} updates`);
      }
    }
    const after = await Promise.all(peers.map((peer) => peer.stats()));
    for (const stop of stops) stop();
    const total = (field: "rpcs" | "bytes" | "messages") =>
      after.reduce((sum, item, n) => sum + item[field] - before[n]![field], 0);
    return {
      size,
      updates,
      latency: summarize(samples),
      framesPerPeer: total("rpcs") / updates / size,
      bytesPerPeer: total("bytes") / updates / size,
      copiesPerPeer: total("messages") / updates / size,
      minMeshPeers,
      nodeVersion,
    };
  } finally {
    await Promise.all(peers.map((peer) => peer.stop()));
  }
}

if (import.meta.main) {
  const size = Number(Deno.args[0] ?? 5);
  const updates = Number(Deno.args[1] ?? 40);
  const dir = await installPeer();
  try {
    console.log(await measureGossipsub(dir, size, updates, console.log));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
