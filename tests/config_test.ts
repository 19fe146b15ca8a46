import assert from "node:assert/strict";
import {
  defaultSettings,
  envName,
  flagName,
  resolveSettings,
  SettingsError,
  settingsFromEnv,
  shareLimit,
} from "../lib/config.ts";
import { flattenConfig, parseConfigText } from "../lib/config_file.ts";
import {
  ManifestError,
  parseManifest,
  planInstances,
  seedUrls,
} from "../lib/manifest.ts";

Deno.test("presets change timing from the lan base", () => {
  assert.equal(defaultSettings("lan").gossipIntervalMs, 200);
  assert.equal(defaultSettings("local").gossipIntervalMs, 100);
  assert.equal(defaultSettings("wan").gossipIntervalMs, 500);
  assert.equal(
    resolveSettings({ preset: "wan", gossipIntervalMs: 50 }).gossipIntervalMs,
    50,
  );
});

Deno.test("resolveSettings names every invalid field", () => {
  assert.throws(
    () =>
      resolveSettings({
        port: -1,
        id: "has space",
        redialMinMs: 5000,
        redialMaxMs: 100,
      }),
    (error: unknown) =>
      error instanceof SettingsError && /port:/.test(error.message) &&
      /id: must be 1 to 64/.test(error.message) &&
      /redialMinMs: must not be greater than redialMaxMs/.test(error.message),
  );
});

Deno.test("settings come from GRAPEVINE_ variables", () => {
  assert.equal(flagName("gossipIntervalMs"), "gossip-interval-ms");
  assert.equal(envName("gossipIntervalMs"), "GRAPEVINE_GOSSIP_INTERVAL_MS");
  const settings = settingsFromEnv({
    GRAPEVINE_ID: "edge-1",
    GRAPEVINE_SEEDS: "http://a:1, http://b:2",
    GRAPEVINE_FANOUT: "5",
  });
  assert.deepEqual(settings, {
    id: "edge-1",
    seeds: ["http://a:1", "http://b:2"],
    fanout: 5,
  });
  assert.throws(
    () => settingsFromEnv({ GRAPEVINE_PORT: "eighty" }),
    /GRAPEVINE_PORT: "eighty" is not a number/,
  );
});

Deno.test("shareLimit grows with log10 of the fleet", () => {
  assert.equal(shareLimit(4, 5), 4 * 1);
  assert.equal(shareLimit(4, 50), 4 * 2);
  assert.equal(shareLimit(4, 500), 4 * 3);
});

Deno.test("flattenConfig opens mappings to the given depth", () => {
  const data = { a: { b: { c: 1 }, d: [1, 2] }, e: "x", f: {} };
  assert.deepEqual(flattenConfig(data), data);
  assert.deepEqual(flattenConfig(data, 2), {
    "a.b": { c: 1 },
    "a.d": [1, 2],
    e: "x",
    f: {},
  });
  assert.deepEqual(flattenConfig(data, 3), {
    "a.b.c": 1,
    "a.d": [1, 2],
    e: "x",
    f: {},
  });
});

Deno.test("parseConfigText rejects files that are not mappings", () => {
  assert.throws(
    () => parseConfigText("[1, 2]", "x.yaml"),
    /must contain a mapping/,
  );
  assert.throws(
    () => parseConfigText("{oops", "x.json"),
    /x.json is not valid JSON/,
  );
  assert.throws(
    () => parseConfigText("a: [", "x.yaml"),
    /x.yaml is not valid YAML/,
  );
});

const MANIFEST = `
fleet: test
preset: local
seeds: [a1]
regions:
  - name: eu
    instances:
      - { id: a1, port: 9001 }
      - { id: a2, port: 9002 }
  - name: us
    instances:
      - { id: b1, port: 9003 }
`;

Deno.test("manifest plans instances, seeds and resized fleets", () => {
  const manifest = parseManifest(MANIFEST, "test.yml");
  const planned = planInstances(manifest, "/base");
  assert.deepEqual(planned.map((item) => item.id), ["a1", "a2", "b1"]);
  assert.equal(planned[0]!.url, "http://127.0.0.1:9001");
  assert.equal(planned[0]!.kvPath, "/base/.grapevine/a1.kv");
  const absolute = parseManifest(MANIFEST + "data_dir: /srv/kv\n", "test.yml");
  assert.equal(planInstances(absolute, "/base")[0]!.kvPath, "/srv/kv/a1.kv");
  assert.deepEqual(seedUrls(manifest, planned), ["http://127.0.0.1:9001"]);
  const resized = planInstances(manifest, "/base", 6);
  assert.deepEqual(resized.map((item) => `${item.id}:${item.port}`), [
    "a1:9001",
    "a2:9002",
    "b1:9003",
    "us-2:9004",
    "eu-3:9005",
    "us-3:9006",
  ]);
});

Deno.test("manifest errors name the wrong field", () => {
  const duplicate = MANIFEST.replace("id: a2", "id: a1");
  assert.throws(
    () => parseManifest(duplicate, "m.yml"),
    (error: unknown) =>
      error instanceof ManifestError &&
      /regions.0.instances.1.id: duplicate instance id a1/.test(error.message),
  );
  const badSeed = MANIFEST.replace("seeds: [a1]", "seeds: [zz]");
  assert.throws(
    () => parseManifest(badSeed, "m.yml"),
    /seeds.0: seed zz is not an instance/,
  );
  const badSetting = MANIFEST + "settings:\n  fanotu: 3\n";
  assert.throws(() => parseManifest(badSetting, "m.yml"), /settings/);
  assert.throws(
    () => parseManifest("fleet: [", "m.yml"),
    /m.yml is not valid YAML/,
  );
});
