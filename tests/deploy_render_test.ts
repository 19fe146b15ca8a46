import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import { resolveSettings, settingsFromEnv } from "../lib/config.ts";
import { DENO_DEPLOY_ENTRYPOINT } from "../lib/deploy/deno_deploy.ts";
import { kvBaseDir } from "../lib/deploy/docker.ts";
import { FLY_START_SCRIPT } from "../lib/deploy/fly.ts";
import { RenderError, TARGETS } from "../lib/deploy/render.ts";
import { type Manifest, parseManifest } from "../lib/manifest.ts";
import { runCli } from "./helpers/cli.ts";

const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url)).replace(
  /\/$/,
  "",
);

/**
 * A fleet of 3 regions whose values all differ from the defaults, so a
 * check that passes shows the value came from the manifest.
 */
const FLEET_YAML = `
fleet: edge
preset: wan
kv_path: /srv/grapevine/{region}/{id}.kv
stop_timeout_s: 21
seeds: [eu-1, us-1]
security:
  fleet_keys_env: EDGE_FLEET_KEYS
  admin_token_env: EDGE_ADMIN_TOKEN
settings:
  fanout: 4
  gossipIntervalMs: 700
targets:
  docker:
    base_image: denoland/deno:2.9.1
  systemd:
    user: gv
    install_dir: /srv/grapevine-app
    deno_path: /opt/deno/bin/deno
    env_file: /etc/edge/secrets.env
  fly:
    app_prefix: edge-gv
    port: 9090
  deno_deploy:
    app: edge-gv-deploy
    region: edge-deploy
  github:
    branch: release
regions:
  - name: eu
    platform_region: ams
    instances:
      - { id: eu-1, port: 7101, host: 0.0.0.0, url: "https://eu-1.edge.example:7101" }
      - { id: eu-2, port: 7102, host: 0.0.0.0, url: "https://eu-2.edge.example:7102" }
  - name: us
    platform_region: ord
    instances:
      - { id: us-1, port: 7201, host: 0.0.0.0, url: "https://us-1.edge.example:7201" }
  - name: ap
    platform_region: sin
    instances:
      - { id: ap-1, port: 7301, host: 0.0.0.0, url: "https://ap-1.edge.example:7301" }
`;

const FLEET = parseManifest(FLEET_YAML, "fleet.yml");

const INSTANCES = FLEET.regions.flatMap((region) =>
  region.instances.map((instance) => ({ ...instance, region: region.name }))
);

/** Renders a target into a fresh temporary folder; returns the files by path. */
function render(
  target: string,
  manifest: Manifest = FLEET,
  outDir = "/tmp/grapevine-render",
) {
  const result = TARGETS[target]!(manifest, {
    projectDir: PROJECT_DIR,
    outDir,
  });
  const files = new Map(result.files.map((file) => [file.path, file.content]));
  return { files, warnings: result.warnings };
}

/** The parts of a compose service that the tests read. */
interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment: Record<string, string | null>;
  ports: string[];
  volumes: string[];
  stop_signal: string;
  stop_grace_period: string;
  restart: string;
}

/** The parts of a fly.toml that the tests read. */
interface FlyConfig {
  app: string;
  primary_region: string;
  kill_signal: string;
  kill_timeout: number;
  build: Record<string, string>;
  env: Record<string, string>;
  processes: { app: string };
  mounts: { source: string; destination: string }[];
  checks: { healthz: { path: string; port: number } };
}

function parseFly(text: string): FlyConfig {
  return parseToml(text) as unknown as FlyConfig;
}

/** Checks that GRAPEVINE_* variables configure a valid instance. */
function assertValidSettings(env: Record<string, string>, label: string) {
  const settings = resolveSettings(settingsFromEnv(env));
  assert.equal(settings.fanout, 4, label);
  assert.equal(settings.gossipIntervalMs, 700, label);
  assert.equal(settings.preset, "wan", label);
  return settings;
}

/** Parses systemd unit text into sections of repeated keys. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(match, `line ${index + 1} is not KEY=VALUE: ${raw}`);
    assert.ok(current, `line ${index + 1} comes before any [Section]`);
    const values = current.get(match[1]!) ?? [];
    values.push(match[2]!);
    current.set(match[1]!, values);
  }
  return sections;
}

/** Reads Environment= values, undoing the quoting that systemd.exec(5) defines. */
function unitEnvironment(values: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const value of values) {
    const unquoted = value.startsWith('"')
      ? value.slice(1, -1).replace(/\\(["\\])/g, "$1")
      : value;
    const text = unquoted.replaceAll("%%", "%");
    const equals = text.indexOf("=");
    env[text.slice(0, equals)] = text.slice(equals + 1);
  }
  return env;
}

/** Parses a dotenv file of KEY=VALUE lines and # comments. */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    assert.ok(match, `not KEY=VALUE: ${line}`);
    env[match[1]!] = match[2]!;
  }
  return env;
}

/** Splits a Dockerfile into instructions, joining continued lines. */
function dockerInstructions(text: string): [string, string][] {
  const instructions: [string, string][] = [];
  let pending = "";
  for (const line of text.split("\n")) {
    if (pending === "" && (line.trim() === "" || line.startsWith("#"))) {
      continue;
    }
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    const space = full.indexOf(" ");
    instructions.push([full.slice(0, space), full.slice(space + 1).trim()]);
  }
  assert.equal(pending, "", "Dockerfile ends inside a continued line");
  return instructions;
}

Deno.test("deploy commands print --help", async () => {
  for (const args of [["deploy"], ["deploy", "render"], ["deploy", "schema"]]) {
    const result = await runCli([...args, "--help"]);
    assert.equal(result.code, 0, args.join(" "));
    assert.match(
      result.stdout,
      new RegExp(`^Usage: main.ts ${args.join(" ")}`),
    );
  }
  const group = await runCli(["deploy", "--help"]);
  assert.match(group.stdout, /\n {2}render {2}/);
  assert.match(group.stdout, /\n {2}schema {2}/);
  const top = await runCli(["--help"]);
  assert.match(top.stdout, /\n {2}deploy /);
});

Deno.test("deploy usage errors exit 2", async () => {
  const missing = await runCli(["deploy"]);
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /Missing subcommand of deploy; expected render or schema/,
  );

  const unknown = await runCli(["deploy", "launch"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown subcommand "launch" of deploy/);

  const noTarget = await runCli(["deploy", "render"]);
  assert.equal(noTarget.code, 2);
  assert.match(noTarget.stderr, /Missing --target/);

  const badTarget = await runCli(["deploy", "render", "--target", "heroku"]);
  assert.equal(badTarget.code, 2);
  assert.match(
    badTarget.stderr,
    /Unknown --target "heroku": expected docker, systemd, fly, deno-deploy, github or all/,
  );
});

Deno.test("deploy render reports manifest gaps", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-render-" });
  try {
    const manifest = join(dir, "deploy.yml");
    await Deno.writeTextFile(
      manifest,
      FLEET_YAML.replace("    platform_region: ord\n", ""),
    );
    const out = join(dir, "out");
    const result = await runCli([
      "deploy",
      "render",
      "--target",
      "all",
      "--manifest",
      manifest,
      "--out",
      out,
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /regions\.1\.platform_region: missing; the fly target needs the Fly\.io region code of region us/,
    );
    // Nothing is written when one target fails.
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy schema --check finds a stale file", async () => {
  const current = await runCli(["deploy", "schema", "--check"]);
  assert.equal(current.code, 0, current.stderr);
  const dir = await Deno.makeTempDir({ prefix: "grapevine-schema-" });
  try {
    const stale = join(dir, "deploy.schema.json");
    await Deno.writeTextFile(stale, "{}\n");
    const result = await runCli([
      "deploy",
      "schema",
      "--out",
      stale,
      "--check",
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /is out of date/);
    const written = await runCli(["deploy", "schema", "--out", stale]);
    assert.equal(written.code, 0, written.stderr);
    const schema = JSON.parse(await Deno.readTextFile(stale));
    assert.equal(schema.$schema, "http://json-schema.org/draft-07/schema#");
    assert.ok("regions" in schema.properties);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("render writes every target's files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-render-" });
  try {
    const manifest = join(dir, "deploy.yml");
    await Deno.writeTextFile(manifest, FLEET_YAML);
    const result = await runCli([
      "deploy",
      "render",
      "--target",
      "all",
      "--manifest",
      manifest,
      "--out",
      dir,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const expected = [
      "Dockerfile",
      ".dockerignore",
      "compose.yaml",
      ...INSTANCES.map((instance) =>
        `systemd/grapevine-${instance.id}.service`
      ),
      "systemd/grapevine.env.example",
      ...FLEET.regions.map((region) => `fly.${region.name}.toml`),
      "deno-deploy/app.env",
      "deno-deploy/README.md",
      ".github/workflows/grapevine.yml",
    ];
    for (const path of expected) {
      const info = await Deno.stat(join(dir, path));
      assert.ok(info.isFile, path);
      assert.ok(info.size > 0, path);
    }
    assert.equal(
      result.stderr,
      "",
      "a complete manifest renders without warnings",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Dockerfile runs serve as non-root", () => {
  const text = render("docker").files.get("Dockerfile")!;
  const instructions = dockerInstructions(text);
  const known = new Set([
    "FROM",
    "RUN",
    "WORKDIR",
    "USER",
    "COPY",
    "ENV",
    "EXPOSE",
    "VOLUME",
    "HEALTHCHECK",
    "STOPSIGNAL",
    "CMD",
  ]);
  for (const [keyword] of instructions) assert.ok(known.has(keyword), keyword);
  const first = instructions[0]!;
  assert.deepEqual(first, ["FROM", "denoland/deno:2.9.1"]);

  const keywords = instructions.map(([keyword]) => keyword);
  const user = instructions.findIndex(([keyword]) => keyword === "USER");
  assert.equal(instructions[user]![1], "deno");
  assert.ok(user < keywords.lastIndexOf("CMD"), "USER comes before CMD");
  assert.equal(keywords.filter((keyword) => keyword === "USER").length, 1);

  const cmd = JSON.parse(instructions.find(([k]) => k === "CMD")![1]);
  assert.deepEqual(cmd.slice(0, 2), ["deno", "run"]);
  assert.deepEqual(cmd.slice(-2), ["main.ts", "serve"]);

  const health = instructions.find(([k]) => k === "HEALTHCHECK")![1];
  assert.match(health, /--interval=\d+s/);
  const probe = JSON.parse(health.slice(health.indexOf("CMD ") + 4));
  assert.deepEqual(probe.slice(0, 2), ["deno", "eval"]);
  assert.match(probe[2], /\/healthz/);

  assert.deepEqual(instructions.find(([k]) => k === "STOPSIGNAL"), [
    "STOPSIGNAL",
    "SIGTERM",
  ]);
  const kvDir = kvBaseDir(FLEET.kv_path);
  assert.equal(kvDir, "/srv/grapevine");
  assert.deepEqual(instructions.find(([k]) => k === "VOLUME"), [
    "VOLUME",
    kvDir,
  ]);
  assert.ok(
    instructions.some(([k, args]) =>
      k === "RUN" && args.includes(`chown deno:deno /app ${kvDir}`)
    ),
  );
  const env = instructions.find(([k]) => k === "ENV")![1];
  assert.match(env, /GRAPEVINE_HOST=0\.0\.0\.0/);
});

Deno.test("compose file starts the 3-region fleet", () => {
  const outDir = join(PROJECT_DIR, "deploy-out");
  const { files } = render("docker", FLEET, outDir);
  const compose = parseYaml(files.get("compose.yaml")!);
  assert.equal(compose.name, "grapevine-edge");
  const services = compose.services as Record<string, ComposeService>;
  assert.deepEqual(Object.keys(services), INSTANCES.map((i) => i.id));

  const regions = new Set<string>();
  for (const instance of INSTANCES) {
    const service = services[instance.id]!;
    const env = service.environment as Record<string, string | null>;
    assert.equal(env.GRAPEVINE_ID, instance.id);
    assert.equal(env.GRAPEVINE_REGION, instance.region);
    assert.equal(env.GRAPEVINE_PORT, String(instance.port));
    assert.equal(env.GRAPEVINE_HOST, "0.0.0.0");
    assert.equal(
      env.GRAPEVINE_ADVERTISE_URL,
      `http://${instance.id}:${instance.port}`,
    );
    assert.equal(
      env.GRAPEVINE_KV_PATH,
      `/srv/grapevine/${instance.region}/${instance.id}.kv`,
    );
    const seeds = ["http://eu-1:7101", "http://us-1:7201"].filter((url) =>
      !url.startsWith(`http://${instance.id}:`)
    );
    assert.equal(env.GRAPEVINE_SEEDS, seeds.join(","), instance.id);
    // Secrets are passed through from the shell by name, with no value.
    assert.ok("EDGE_FLEET_KEYS" in env, instance.id);
    assert.equal(env.EDGE_FLEET_KEYS, null);
    assert.ok("EDGE_ADMIN_TOKEN" in env, instance.id);
    assert.equal(env.EDGE_ADMIN_TOKEN, null);
    const plain = Object.fromEntries(
      Object.entries(env).filter(([, value]) => value !== null),
    ) as Record<string, string>;
    const settings = assertValidSettings(plain, instance.id);
    assert.equal(settings.id, instance.id);

    assert.deepEqual(service.ports, [
      `127.0.0.1:${instance.port}:${instance.port}`,
    ]);
    assert.deepEqual(service.volumes, [`${instance.id}-data:/srv/grapevine`]);
    assert.ok(instance.id + "-data" in compose.volumes);
    assert.equal(service.stop_signal, "SIGTERM");
    assert.equal(service.stop_grace_period, "21s");
    assert.equal(service.restart, "unless-stopped");
    const build = service.build;
    assert.ok(build, `${instance.id} has no build`);
    assert.equal(resolve(outDir, build.context), PROJECT_DIR);
    assert.equal(
      resolve(outDir, build.context, build.dockerfile),
      join(outDir, "Dockerfile"),
    );
    regions.add(env.GRAPEVINE_REGION!);
  }
  assert.equal(regions.size, 3);
});

Deno.test("compose uses the manifest's image", () => {
  const manifest = parseManifest(
    FLEET_YAML + "image: ghcr.io/example/grapevine:1.2\n",
    "fleet.yml",
  );
  const compose = parseYaml(
    render("docker", manifest).files.get("compose.yaml")!,
  );
  for (
    const service of Object.values(compose.services) as Record<
      string,
      unknown
    >[]
  ) {
    assert.equal(service.image, "ghcr.io/example/grapevine:1.2");
    assert.equal(service.build, undefined);
  }
});

Deno.test("compose rejects colliding service names", () => {
  const manifest = parseManifest(
    FLEET_YAML.replace("id: eu-2", "id: EU-1"),
    "fleet.yml",
  );
  assert.throws(
    () => render("docker", manifest),
    (error: unknown) =>
      error instanceof RenderError &&
      /Instances eu-1 and EU-1 both map to the compose service eu-1/.test(
        error.message,
      ),
  );
});

Deno.test("systemd units carry instance values", () => {
  const { files, warnings } = render("systemd");
  assert.deepEqual(warnings, []);
  for (const instance of INSTANCES) {
    const unit = parseUnit(
      files.get(`systemd/grapevine-${instance.id}.service`)!,
    );
    assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
    const service = unit.get("Service")!;
    const onlyValue = (key: string) => {
      const values = service.get(key);
      assert.equal(values?.length, 1, `${instance.id} ${key}`);
      return values![0]!;
    };
    assert.equal(
      onlyValue("ExecStart"),
      "/opt/deno/bin/deno run --config /srv/grapevine-app/deno.json --allow-net --allow-read --allow-write --allow-env /srv/grapevine-app/main.ts serve",
    );
    assert.equal(onlyValue("KillSignal"), "SIGTERM");
    assert.equal(onlyValue("TimeoutStopSec"), "21");
    assert.equal(onlyValue("Restart"), "on-failure");
    assert.equal(onlyValue("User"), "gv");
    assert.equal(onlyValue("WorkingDirectory"), "/srv/grapevine-app");
    assert.equal(onlyValue("EnvironmentFile"), "/etc/edge/secrets.env");
    assert.equal(onlyValue("ReadWritePaths"), "/srv/grapevine");
    assert.deepEqual(unit.get("Install")!.get("WantedBy"), [
      "multi-user.target",
    ]);

    const env = unitEnvironment(service.get("Environment")!);
    assert.equal(env.GRAPEVINE_ID, instance.id);
    assert.equal(env.GRAPEVINE_REGION, instance.region);
    assert.equal(env.GRAPEVINE_HOST, "0.0.0.0");
    assert.equal(env.GRAPEVINE_PORT, String(instance.port));
    assert.equal(env.GRAPEVINE_ADVERTISE_URL, instance.url);
    const seeds = [
      "https://eu-1.edge.example:7101",
      "https://us-1.edge.example:7201",
    ].filter((url) => url !== instance.url);
    assert.equal(env.GRAPEVINE_SEEDS, seeds.join(","));
    assert.equal(env.EDGE_FLEET_KEYS, undefined, "no secret in the unit");
    assert.equal(env.EDGE_ADMIN_TOKEN, undefined, "no secret in the unit");
    assertValidSettings(env, instance.id);
  }
  const example = parseEnvFile(files.get("systemd/grapevine.env.example")!);
  assert.deepEqual(example, { EDGE_FLEET_KEYS: "", EDGE_ADMIN_TOKEN: "" });
});

Deno.test("systemd unit quotes odd values", () => {
  const manifest = parseManifest(
    FLEET_YAML.replace(
      'url: "https://eu-1.edge.example:7101"',
      'url: "https://eu-1.edge.example:7101/100%25"',
    ),
    "fleet.yml",
  );
  const unit = parseUnit(
    render("systemd", manifest).files.get("systemd/grapevine-eu-1.service")!,
  );
  const env = unitEnvironment(unit.get("Service")!.get("Environment")!);
  assert.equal(
    env.GRAPEVINE_ADVERTISE_URL,
    "https://eu-1.edge.example:7101/100%25",
  );
  const lines = unit.get("Service")!.get("Environment")!;
  assert.ok(
    lines.includes(
      "GRAPEVINE_ADVERTISE_URL=https://eu-1.edge.example:7101/100%%25",
    ),
  );
});

Deno.test("systemd warns about loopback instances", () => {
  const manifest = parseManifest(
    FLEET_YAML.replaceAll("host: 0.0.0.0, ", ""),
    "fleet.yml",
  );
  const { warnings } = render("systemd", manifest);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /Instances eu-1, eu-2, us-1, ap-1 listen on a loopback address/,
  );
});

Deno.test("systemd unit stops on SIGTERM", async () => {
  // Runs the unit's ExecStart with its Environment, as systemd would, but
  // from this repository and with a temporary KV file.
  const unit = parseUnit(
    render("systemd").files.get("systemd/grapevine-eu-1.service")!,
  );
  const service = unit.get("Service")!;
  const dir = await Deno.makeTempDir({ prefix: "grapevine-unit-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const env = {
    ...unitEnvironment(service.get("Environment")!),
    GRAPEVINE_HOST: "127.0.0.1",
    GRAPEVINE_PORT: String(port),
    GRAPEVINE_ADVERTISE_URL: `http://127.0.0.1:${port}`,
    GRAPEVINE_KV_PATH: join(dir, "eu-1.kv"),
    GRAPEVINE_SEEDS: "",
    NO_COLOR: "1",
  };
  const [, ...args] = service.get("ExecStart")![0]!
    .replaceAll("/srv/grapevine-app", PROJECT_DIR)
    .split(" ");
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    const deadline = Date.now() + 20_000;
    let healthy = false;
    while (!healthy && Date.now() < deadline) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`);
        healthy = response.ok && (await response.json()).id === "eu-1";
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    assert.ok(healthy, "the instance did not answer /healthz in 20 s");
    const stopped = Date.now();
    child.kill(service.get("KillSignal")![0] as Deno.Signal);
    const timeoutMs = Number(service.get("TimeoutStopSec")![0]) * 1000;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const result = await output;
    clearTimeout(timer);
    const logs = new TextDecoder().decode(result.stdout) +
      new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, logs);
    assert.ok(
      Date.now() - stopped < timeoutMs,
      "stopped within TimeoutStopSec",
    );
    assert.match(logs, /"instance stopped"/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await output.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fly configs carry region values", async () => {
  const { files, warnings } = render("fly", FLEET, PROJECT_DIR);
  assert.deepEqual(warnings, []);
  assert.ok(
    files.has("Dockerfile"),
    "builds the Dockerfile when no image is set",
  );
  const seedApps =
    "http://edge-gv-eu.internal:9090,http://edge-gv-us.internal:9090";
  for (const region of FLEET.regions) {
    const config = parseFly(files.get(`fly.${region.name}.toml`)!);
    assert.equal(config.app, `edge-gv-${region.name}`);
    assert.equal(config.primary_region, region.platform_region);
    assert.equal(config.kill_signal, "SIGTERM");
    assert.equal(config.kill_timeout, 21);
    assert.equal(config.build.dockerfile, "Dockerfile");
    const env = config.env as Record<string, string>;
    assert.equal(env.GRAPEVINE_REGION, region.name);
    assert.equal(env.GRAPEVINE_PORT, "9090");
    assert.equal(env.GRAPEVINE_HOST, "::");
    assert.equal(
      env.GRAPEVINE_KV_PATH,
      `/srv/grapevine/${region.name}/edge-gv-${region.name}.kv`,
    );
    assert.equal(env.GRAPEVINE_ID, undefined, "each Machine picks its own id");
    assert.equal(
      env.EDGE_FLEET_KEYS,
      undefined,
      "secrets are set with fly secrets",
    );
    const own = `http://edge-gv-${region.name}.internal:9090`;
    const expected = seedApps.split(",").filter((url) => url !== own);
    assert.deepEqual(env.GRAPEVINE_SEEDS!.split(","), expected, region.name);
    assertValidSettings(env, region.name);

    assert.equal(config.processes.app, FLY_START_SCRIPT);
    assert.deepEqual(config.mounts.map((mount: object) => ({ ...mount })), [{
      source: "grapevine_data",
      destination: "/srv/grapevine",
    }]);
    assert.equal(config.checks.healthz.path, "/healthz");
    assert.equal(config.checks.healthz.port, 9090);
    assert.match(
      files.get(`fly.${region.name}.toml`)!,
      /fly secrets set .*EDGE_FLEET_KEYS=\.\.\. EDGE_ADMIN_TOKEN=\.\.\./,
    );
    const count = region.instances.length;
    assert.match(
      files.get(`fly.${region.name}.toml`)!,
      new RegExp(
        `fly scale count ${count} --region ${region.platform_region} `,
      ),
    );
  }
  // The script path in the image maps to this file of the repository.
  const script = join(PROJECT_DIR, FLY_START_SCRIPT.replace(/^\/app\//, ""));
  const info = await Deno.stat(script);
  assert.ok(info.mode! & 0o111, "fly-start.sh is executable");
});

Deno.test("fly config uses the manifest's image", () => {
  const manifest = parseManifest(
    FLEET_YAML + "image: registry.fly.io/edge-gv:7\n",
    "fleet.yml",
  );
  const { files } = render("fly", manifest, PROJECT_DIR);
  assert.equal(files.has("Dockerfile"), false);
  const config = parseFly(files.get("fly.eu.toml")!);
  assert.deepEqual({ ...config.build }, { image: "registry.fly.io/edge-gv:7" });
});

Deno.test("fly-start.sh derives URL and id", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-fly-" });
  try {
    // A stand-in for deno that prints what the script passes to it.
    await Deno.writeTextFile(
      join(dir, "deno"),
      '#!/bin/sh\necho "url=$GRAPEVINE_ADVERTISE_URL id=${GRAPEVINE_ID:-} args=$*"\n',
      { mode: 0o755 },
    );
    const script = join(PROJECT_DIR, "lib/deploy/fly-start.sh");
    const run = async (env: Record<string, string>) => {
      const output = await new Deno.Command("sh", {
        args: [script],
        env: { PATH: `${dir}:/usr/bin:/bin`, ...env },
        clearEnv: true,
        stdin: "null",
      }).output();
      return {
        code: output.code,
        stdout: new TextDecoder().decode(output.stdout).trim(),
        stderr: new TextDecoder().decode(output.stderr),
      };
    };
    const kvPath = join(dir, "eu.kv");
    const fly = {
      FLY_PRIVATE_IP: "fdaa:0:1::3",
      FLY_MACHINE_ID: "3d8d9e1b",
      GRAPEVINE_PORT: "9090",
      GRAPEVINE_REGION: "eu",
      GRAPEVINE_KV_PATH: kvPath,
    };
    const first = await run(fly);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stdout,
      "url=http://[fdaa:0:1::3]:9090 id=eu-3d8d9e1b args=run --allow-net --allow-read --allow-write --allow-env main.ts serve",
    );

    // With a KV file, the id stored in it is kept.
    await Deno.writeTextFile(kvPath, "");
    const later = await run(fly);
    assert.match(later.stdout, /^url=http:\/\/\[fdaa:0:1::3\]:9090 id= args=/);

    const withUrl = await run({
      ...fly,
      GRAPEVINE_ADVERTISE_URL: "http://edge:1",
    });
    assert.match(withUrl.stdout, /^url=http:\/\/edge:1 /);

    const elsewhere = await run({ GRAPEVINE_PORT: "9090" });
    assert.equal(elsewhere.code, 1);
    assert.match(elsewhere.stderr, /FLY_PRIVATE_IP is not set/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fly render names a missing region code", () => {
  const manifest = parseManifest(
    FLEET_YAML.replace("    platform_region: sin\n", ""),
    "fleet.yml",
  );
  assert.throws(
    () => render("fly", manifest),
    /regions\.2\.platform_region: missing; the fly target needs the Fly\.io region code of region ap/,
  );
  const longName = parseManifest(
    FLEET_YAML.replace("app_prefix: edge-gv", `app_prefix: ${"x".repeat(41)}`)
      .replace("- name: eu", `- name: ${"e".repeat(30)}`),
    "fleet.yml",
  );
  assert.throws(() => render("fly", longName), /set targets\.fly\.app_prefix/);
});

Deno.test("deno-deploy env joins through seeds", async () => {
  const { files, warnings } = render("deno-deploy");
  assert.deepEqual(warnings, []);
  const envText = files.get("deno-deploy/app.env")!;
  const env = parseEnvFile(envText);
  assert.equal(env.GRAPEVINE_ID, "edge-gv-deploy");
  assert.equal(env.GRAPEVINE_REGION, "edge-deploy");
  assert.equal(env.GRAPEVINE_ADVERTISE_URL, "none");
  assert.equal(
    env.GRAPEVINE_SEEDS,
    "https://eu-1.edge.example:7101,https://us-1.edge.example:7201",
  );
  assert.equal(
    env.GRAPEVINE_KV_PATH,
    undefined,
    "Deno Deploy's KV has no path",
  );
  assert.equal(env.EDGE_FLEET_KEYS, undefined);
  assert.match(envText, /set EDGE_FLEET_KEYS and EDGE_ADMIN_TOKEN as secrets/);
  const settings = assertValidSettings(env, "deno-deploy");
  assert.equal(settings.advertiseUrl, "none");

  const readme = files.get("deno-deploy/README.md")!;
  assert.match(
    readme,
    new RegExp(`entrypoint\\s+\`${DENO_DEPLOY_ENTRYPOINT}\``),
  );
  assert.match(
    readme,
    /- https:\/\/eu-1\.edge\.example:7101\n\n- https:\/\/us-1\.edge\.example:7201/,
  );
  assert.match(readme, /`EDGE_FLEET_KEYS` and `EDGE_ADMIN_TOKEN` as secrets/);
  await Deno.stat(join(PROJECT_DIR, DENO_DEPLOY_ENTRYPOINT));
  // Wrapped at 80 columns like deno fmt, apart from the generated-by comment.
  for (const line of readme.split("\n").slice(1)) {
    assert.ok(line.length <= 80, line);
  }
});

Deno.test("deno-deploy warns about private seeds", () => {
  const manifest = parseManifest(
    FLEET_YAML.replace("https://eu-1.edge.example:7101", "http://10.0.0.5:7101")
      .replace("preset: wan", "preset: lan"),
    "fleet.yml",
  );
  const { warnings } = render("deno-deploy", manifest);
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.match(
    warnings[0]!,
    /Seeds eu-1 \(http:\/\/10\.0\.0\.5:7101\) have private or loopback URLs/,
  );
  assert.match(warnings[1]!, /preset is lan/);
});

Deno.test("github workflow checks, tests, deploys", () => {
  const { files } = render("github");
  const workflow = parseYaml(files.get(".github/workflows/grapevine.yml")!);
  assert.deepEqual(workflow.on.push, { branches: ["release"] });
  assert.ok("pull_request" in workflow.on);
  assert.deepEqual(Object.keys(workflow.jobs), ["check", "test", "deploy"]);
  const runs = (job: string): string[] =>
    workflow.jobs[job].steps.filter((step: { run?: string }) => step.run).map((
      step: { run: string },
    ) => step.run);

  assert.deepEqual(runs("check"), [
    "npx -y deno@2 fmt --check",
    "npx -y deno@2 lint",
    "npx -y deno@2 check main.ts lib/ tests/",
    "npx -y deno@2 run -A main.ts deploy schema --check",
  ]);
  assert.deepEqual(runs("test"), ["npx -y deno@2 task test"]);
  assert.equal(workflow.jobs.test.needs, "check");

  const deploy = workflow.jobs.deploy;
  assert.deepEqual(deploy.needs, ["check", "test"]);
  assert.equal(
    deploy.if,
    "github.event_name == 'push' && github.ref == 'refs/heads/release'",
  );
  assert.equal(deploy.env.FLY_API_TOKEN, "${{ secrets.FLY_API_TOKEN }}");
  assert.deepEqual(runs("deploy"), [
    "npx -y deno@2 run -A main.ts deploy render --target fly --out .",
    ...FLEET.regions.map((region) =>
      `flyctl deploy --remote-only --config fly.${region.name}.toml`
    ),
  ]);
  for (
    const job of Object.values(workflow.jobs) as {
      steps: { uses?: string }[];
    }[]
  ) {
    assert.equal(job.steps[0]!.uses, "actions/checkout@v4");
  }
});

Deno.test("github workflow without deploy job", () => {
  const manifest = parseManifest(
    FLEET_YAML.replace("branch: release", "branch: release\n    deploy: none"),
    "fleet.yml",
  );
  const workflow = parseYaml(
    render("github", manifest).files.get(".github/workflows/grapevine.yml")!,
  );
  assert.deepEqual(Object.keys(workflow.jobs), ["check", "test"]);
});

Deno.test("rendered files carry the fleet name", () => {
  for (const target of Object.keys(TARGETS)) {
    for (const [path, content] of render(target, FLEET, PROJECT_DIR).files) {
      assert.match(
        content,
        /from the manifest of fleet edge;/,
        `${target} ${path}`,
      );
    }
  }
});

const SYSTEMD_ANALYZE = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
  .find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });

Deno.test({
  name: "systemd-analyze accepts the units",
  // NOTE: skipped where systemd-analyze is missing; there the units are
  // only parsed by the tests above.
  ignore: SYSTEMD_ANALYZE === undefined,
  async fn() {
    // verify checks that ExecStart's program exists, so point it at the
    // deno running this test.
    const manifest = parseManifest(
      FLEET_YAML.replace("/opt/deno/bin/deno", Deno.execPath()),
      "fleet.yml",
    );
    const dir = await Deno.makeTempDir({ prefix: "grapevine-systemd-" });
    try {
      const units = [];
      for (const [path, content] of render("systemd", manifest).files) {
        if (!path.endsWith(".service")) continue;
        const file = join(dir, path.slice("systemd/".length));
        await Deno.writeTextFile(file, content);
        units.push(file);
      }
      assert.equal(units.length, INSTANCES.length);
      const output = await new Deno.Command(SYSTEMD_ANALYZE!, {
        args: ["verify", ...units],
        stdin: "null",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      // verify exits 0 even for unknown keys and bad values; it prints them.
      assert.equal(stderr, "");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("Dockerfile steps run without Docker", async () => {
  // No Docker engine runs here, so this replays the Dockerfile by hand: its
  // COPY sources into a folder, its deno RUN step there, then CMD and the
  // HEALTHCHECK probe with the image's settings.
  const instructions = dockerInstructions(
    render("docker").files.get("Dockerfile")!,
  );
  const dir = await Deno.makeTempDir({ prefix: "grapevine-image-" });
  const deno = (args: string[]) => [Deno.execPath(), ...args.slice(1)];
  let child: Deno.ChildProcess | undefined;
  try {
    for (const [keyword, args] of instructions) {
      if (keyword !== "COPY") continue;
      const parts = args.split(" ").filter((part) => !part.startsWith("--"));
      const target = parts.pop()!;
      for (const source of parts) {
        const destination = target.endsWith("/")
          ? join(dir, target, source)
          : join(dir, target);
        const copied = await new Deno.Command("cp", {
          args: ["-r", join(PROJECT_DIR, source), destination],
        }).output();
        assert.equal(copied.code, 0, `COPY ${source}`);
      }
    }
    const install = instructions.find(([k, args]) =>
      k === "RUN" && args.startsWith("deno ")
    )!;
    const [program, ...installArgs] = deno(install[1].split(" "));
    const installed = await new Deno.Command(program!, {
      args: installArgs,
      cwd: dir,
      stdin: "null",
    }).output();
    assert.equal(installed.code, 0, new TextDecoder().decode(installed.stderr));

    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const env = {
      GRAPEVINE_HOST: "127.0.0.1",
      GRAPEVINE_PORT: String(port),
      GRAPEVINE_LOG_FORMAT: "json",
      GRAPEVINE_KV_PATH: join(dir, "data", "eu-1.kv"),
      NO_COLOR: "1",
    };
    const cmd = deno(JSON.parse(instructions.find(([k]) => k === "CMD")![1]));
    child = new Deno.Command(cmd[0]!, {
      args: cmd.slice(1),
      cwd: dir,
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();

    const health = instructions.find(([k]) => k === "HEALTHCHECK")![1];
    const probe = deno(JSON.parse(health.slice(health.indexOf("CMD ") + 4)));
    let healthy = false;
    for (let attempt = 0; attempt < 100 && !healthy; attempt++) {
      const result = await new Deno.Command(probe[0]!, {
        args: probe.slice(1),
        cwd: dir,
        env,
        stdin: "null",
        stderr: "null",
      }).output();
      healthy = result.code === 0;
      if (!healthy) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(healthy, "the HEALTHCHECK probe never passed");

    const signal = instructions.find(([k]) => k === "STOPSIGNAL")![1];
    child.kill(signal as Deno.Signal);
    const status = await child.status;
    child = undefined;
    assert.equal(status.code, 0);
  } finally {
    if (child) {
      child.kill("SIGKILL");
      await child.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
});
