import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { parse as parseYaml } from "yaml";
import { manifestJsonSchema, SCHEMA_PATH } from "../lib/deploy/schema.ts";
import {
  DEFAULT_KV_PATH,
  DEFAULT_MANIFEST_PATH,
  loadManifest,
  ManifestError,
  parseManifest,
} from "../lib/manifest.ts";

const MANIFEST_PATH = fileURLToPath(DEFAULT_MANIFEST_PATH);

const MINIMAL = `
fleet: test
regions:
  - name: eu
    instances:
      - { id: a1, port: 9001 }
`;

/** Returns the message of the ManifestError that parsing `text` raises. */
function manifestError(text: string): string {
  try {
    parseManifest(text, "m.yml");
  } catch (error) {
    assert.ok(error instanceof ManifestError, String(error));
    return error.message;
  }
  assert.fail("expected a ManifestError");
}

Deno.test("deploy.yml names its JSON Schema", async () => {
  const text = await Deno.readTextFile(MANIFEST_PATH);
  assert.equal(
    text.split("\n")[0],
    "# yaml-language-server: $schema=./deploy.schema.json",
  );
});

Deno.test("deploy.yml carries deploy fields", async () => {
  const manifest = await loadManifest(MANIFEST_PATH);
  assert.deepEqual(
    manifest.regions.map((region) => region.platform_region),
    ["fra", "iad", "bom"],
  );
  assert.equal(manifest.security.fleet_keys_env, "GRAPEVINE_FLEET_KEYS");
  assert.equal(manifest.security.admin_token_env, "GRAPEVINE_ADMIN_TOKEN");
  assert.equal(manifest.kv_path, "/var/lib/grapevine/{id}.kv");
});

Deno.test("manifest defaults fill deploy fields", () => {
  const manifest = parseManifest(MINIMAL, "m.yml");
  assert.equal(manifest.preset, "lan");
  assert.equal(manifest.kv_path, DEFAULT_KV_PATH);
  assert.equal(manifest.stop_timeout_s, 15);
  assert.equal(manifest.image, undefined);
  assert.deepEqual(manifest.security, {
    fleet_keys_env: "GRAPEVINE_FLEET_KEYS",
    admin_token_env: "GRAPEVINE_ADMIN_TOKEN",
  });
  assert.equal(manifest.targets.docker.base_image, "denoland/deno:2.9.6");
  assert.equal(manifest.targets.systemd.user, "grapevine");
  assert.equal(manifest.targets.fly.port, 8080);
  assert.equal(manifest.targets.github.branch, "main");
  assert.equal(manifest.targets.deno_deploy.region, "deno-deploy");
});

Deno.test("committed JSON Schema is up to date", async () => {
  const committed = await Deno.readTextFile(SCHEMA_PATH);
  assert.equal(
    committed,
    manifestJsonSchema(),
    "deploy.schema.json is stale: run deno run -A main.ts deploy schema",
  );
});

Deno.test("JSON Schema accepts deploy.yml", async () => {
  const schema = JSON.parse(await Deno.readTextFile(SCHEMA_PATH));
  const validate = new Ajv({
    allErrors: true,
    strict: false,
    validateFormats: false,
  }).compile(schema);
  const data = parseYaml(await Deno.readTextFile(MANIFEST_PATH));
  assert.ok(validate(data), JSON.stringify(validate.errors, null, 2));
  assert.ok(validate(parseYaml(MINIMAL)), JSON.stringify(validate.errors));
});

Deno.test("JSON Schema rejects wrong fields", () => {
  const schema = JSON.parse(manifestJsonSchema());
  const validate = new Ajv({
    allErrors: true,
    strict: false,
    validateFormats: false,
  }).compile(schema);
  const cases: [string, Record<string, unknown>, string][] = [
    ["port as text", {
      regions: [{ name: "eu", instances: [{ id: "a1", port: "80" }] }],
    }, "/regions/0/instances/0/port"],
    ["secret in place of a name", {
      security: { fleet_keys_env: "s3cr3t-key-value" },
    }, "/security/fleet_keys_env"],
    ["unknown setting", { settings: { fanotu: 3 } }, "/settings"],
    ["setting out of range", { settings: { fanout: 99 } }, "/settings/fanout"],
    ["unknown target", { targets: { heroku: {} } }, "/targets"],
  ];
  for (const [name, change, path] of cases) {
    const data = { ...parseYaml(MINIMAL), ...change };
    assert.equal(validate(data), false, name);
    const paths = validate.errors!.map((error) => error.instancePath);
    assert.ok(paths.includes(path), `${name}: ${paths.join(", ")}`);
  }
});

Deno.test("manifest errors name path and expectation", () => {
  const cases: [string, string, RegExp][] = [
    [
      "port as text",
      MINIMAL.replace("port: 9001", 'port: "eighty"'),
      /regions\.0\.instances\.0\.port: Invalid input: expected number/,
    ],
    [
      "secret in place of a name",
      MINIMAL + "security:\n  admin_token_env: hunter2-token\n",
      /security\.admin_token_env: must be the name of an environment variable/,
    ],
    [
      "kv_path without {id}",
      MINIMAL + "kv_path: /data/grapevine.kv\n",
      /kv_path: must contain \{id\}/,
    ],
    [
      "relative kv_path",
      MINIMAL + "kv_path: data/{id}.kv\n",
      /kv_path: must be an absolute path/,
    ],
    [
      "unknown placeholder",
      MINIMAL + "kv_path: /data/{host}/{id}.kv\n",
      /kv_path: unknown placeholder \{host\}; expected \{id\}, \{region\} or \{fleet\}/,
    ],
    [
      "platform region name",
      MINIMAL.replace(
        "- name: eu",
        "- name: eu\n    platform_region: Frankfurt",
      ),
      /regions\.0\.platform_region: must be a platform region code/,
    ],
    [
      "fly port zero",
      MINIMAL + "targets:\n  fly:\n    port: 0\n",
      /targets\.fly\.port: Too small: expected number to be >=1/,
    ],
    [
      "unknown target",
      MINIMAL + "targets:\n  heroku: {}\n",
      /targets: Unrecognized key: "heroku"/,
    ],
    [
      "setting of the wrong type",
      MINIMAL + "settings:\n  fanout: three\n",
      /settings\.fanout: Invalid input: expected number/,
    ],
    [
      "duplicate region",
      MINIMAL +
      "  - name: eu\n    instances:\n      - { id: b1, port: 9002 }\n",
      /regions\.1\.name: duplicate region name eu/,
    ],
    [
      "line break in a setting",
      MINIMAL + 'settings:\n  log_level: "info\\nExecStartPre=+/bin/sh"\n',
      /settings\.log_level: contains a line break or another control character/,
    ],
  ];
  for (const [name, text, expected] of cases) {
    const message = manifestError(text);
    assert.match(message, /^Manifest m\.yml is invalid:/, name);
    assert.match(message, expected, name);
  }
});

Deno.test("region_latency errors name the pair", () => {
  const cases: [string, string, RegExp][] = [
    [
      "unknown region",
      MINIMAL +
      "region_latency:\n  pairs:\n    - { regions: [eu, mars], ms: 80 }\n",
      /region_latency\.pairs\.0\.regions: mars is not a region of this manifest; expected one of eu/,
    ],
    [
      "same region twice",
      MINIMAL +
      "region_latency:\n  pairs:\n    - { regions: [eu, eu], ms: 5 }\n",
      /region_latency\.pairs\.0\.regions: must name two different regions, not eu twice/,
    ],
    [
      "negative delay",
      MINIMAL + "region_latency:\n  default_ms: -1\n",
      /region_latency\.default_ms: Too small: expected number to be >=0/,
    ],
    [
      "delay as text",
      MINIMAL + "region_latency:\n  default_ms: 80ms\n",
      /region_latency\.default_ms: Invalid input: expected number/,
    ],
  ];
  for (const [name, text, pattern] of cases) {
    assert.match(manifestError(text), pattern, name);
  }
  const twice = MINIMAL.replace(
    "regions:\n",
    "region_latency:\n  pairs:\n    - { regions: [eu, us], ms: 1 }\n    - { regions: [us, eu], ms: 2 }\nregions:\n",
  ) + "  - name: us\n    instances:\n      - { id: u1, port: 9002 }\n";
  assert.match(
    manifestError(twice),
    /region_latency\.pairs\.1\.regions: the pair us and eu is listed twice/,
  );
});
