/**
 * Footprint of one instance: resident memory with 0, 10,000 and 100,000
 * small keys, start-up time until `/healthz` answers with those keys in the
 * KV file, and CPU time at idle in a fleet.
 *
 * Memory is VmRSS from /proc/PID/status and CPU is utime + stime from
 * /proc/PID/stat, so this benchmark runs on Linux only.
 *
 * @module
 */

import { delay, TestFleet, TestInstance } from "../tests/helpers/process.ts";

/** Figures at one number of keys. */
export interface FootprintRow {
  readonly keys: number;
  /** Resident memory while serving, after loading the keys, in MiB. */
  readonly rssMiB: number;
  /** Resident memory after a restart that reads the keys from KV, in MiB. */
  readonly rssAfterRestartMiB: number;
  /** Milliseconds from spawning the process to the first `/healthz` response. */
  readonly startMs: number;
}

/** Results of the footprint benchmark. */
export interface FootprintResult {
  readonly rows: FootprintRow[];
  /** Bytes of each key's JSON value. */
  readonly valueBytes: number;
  readonly idle: {
    readonly size: number;
    readonly seconds: number;
    /** Mean CPU share of one instance, in percent of one core. */
    readonly cpuPercent: number;
    readonly maxCpuPercent: number;
    /** Resident memory of an idle instance without keys, in MiB. */
    readonly rssMiB: number;
  };
  /** Resident memory of a bare `deno run` of an empty loop, in MiB. */
  readonly denoBaselineMiB: number;
}

const MIB = 2 ** 20;
const BATCH = 2000;

async function rssOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** CPU seconds (user + system) a process used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name, which is in brackets and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  // USER_HZ is 100 on every Linux architecture Deno ships for.
  return ticks / 100;
}

async function loadKeys(
  instance: TestInstance,
  from: number,
  to: number,
): Promise<void> {
  for (let start = from; start < to; start += BATCH) {
    const set: Record<string, unknown> = {};
    for (let i = start; i < Math.min(to, start + BATCH); i++) {
      set[`app.setting.${i}`] = { value: i, note: "small" };
    }
    const response = await fetch(`${instance.url}/v1/config`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ set }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`Batch write failed (${response.status}): ${text}`);
    }
  }
}

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      const response = await fetch(`${url}/healthz`, {
        signal: AbortSignal.timeout(1000),
      });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`${url}/healthz did not respond in ${timeoutMs} ms`);
    }
    await delay(5);
  }
}

/** Measures memory and start-up at each key count, then idle CPU. */
export async function measureFootprint(
  options: { keyCounts: number[]; idleSeconds: number; idleSize: number },
  log: (line: string) => void = () => {},
): Promise<FootprintResult> {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-footprint-" });
  const rows: FootprintRow[] = [];
  const flags = ["--log-level", "info", "--max-requests-per-second", "100000"];
  const kvPath = `${dir}/single.kv`;
  let instance = await TestInstance.start({ id: "single", kvPath, flags });
  try {
    let loaded = 0;
    for (const keys of options.keyCounts) {
      log(`  footprint: ${keys} keys`);
      await loadKeys(instance, loaded, keys);
      loaded = keys;
      // Let the rumors of the load end and the heap settle.
      await delay(3000);
      const rss = await rssOf(instance.pid);
      await instance.stop();
      const spawned = performance.now();
      instance = await TestInstance.start({
        id: "single",
        kvPath,
        flags,
        port: instance.port,
      });
      await waitHealthy(instance.url, 60_000);
      const startMs = performance.now() - spawned;
      await delay(2000);
      rows.push({
        keys,
        rssMiB: rss / MIB,
        rssAfterRestartMiB: (await rssOf(instance.pid)) / MIB,
        startMs,
      });
    }
  } finally {
    await instance.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  log(`  footprint: idle CPU of ${options.idleSize} instances`);
  const fleet = await TestFleet.start(options.idleSize, {
    flags: ["--log-level", "info"],
  });
  let idle: FootprintResult["idle"];
  try {
    await delay(3000);
    const pids = fleet.instances.map((item) => item.pid);
    const before = await Promise.all(pids.map(cpuSeconds));
    await delay(options.idleSeconds * 1000);
    const after = await Promise.all(pids.map(cpuSeconds));
    const shares = after.map((value, i) =>
      (value - before[i]!) / options.idleSeconds * 100
    );
    const rss = await Promise.all(pids.map(rssOf));
    idle = {
      size: options.idleSize,
      seconds: options.idleSeconds,
      cpuPercent: shares.reduce((sum, value) => sum + value, 0) /
        shares.length,
      maxCpuPercent: Math.max(...shares),
      rssMiB: rss.reduce((sum, value) => sum + value, 0) / rss.length / MIB,
    };
  } finally {
    await fleet.stop();
  }

  return {
    rows,
    valueBytes: JSON.stringify({ value: 99_999, note: "small" }).length,
    idle,
    denoBaselineMiB: await denoBaseline(),
  };
}

/** Resident memory of `deno run` holding one timer, in MiB. */
async function denoBaseline(): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "setInterval(() => {}, 1000)"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await delay(1500);
    return (await rssOf(child.pid)) / MIB;
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

if (import.meta.main) {
  console.log(
    JSON.stringify(
      await measureFootprint(
        { keyCounts: [0, 10_000], idleSeconds: 3, idleSize: 3 },
        console.log,
      ),
      null,
      2,
    ),
  );
}
