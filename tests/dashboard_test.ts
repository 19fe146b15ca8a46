import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { flattenConfig, parseConfigText } from "../lib/config_file.ts";
import { TestInstance } from "./helpers/process.ts";

const CHROMIUM = "/usr/bin/chromium";
/**
 * Where the screenshot goes: the README's docs/dashboard.png when
 * GRAPEVINE_UPDATE_SCREENSHOT=1 (`deno task screenshot`), otherwise a
 * temporary file, so a test run leaves the checkout unchanged.
 */
const SCREENSHOT = Deno.env.get("GRAPEVINE_UPDATE_SCREENSHOT") === "1"
  ? fileURLToPath(new URL("../docs/dashboard.png", import.meta.url))
  : `${Deno.makeTempDirSync({ prefix: "grapevine-shot-" })}/dashboard.png`;
const FIXTURE = fileURLToPath(
  new URL("./fixtures/edge-config.yaml", import.meta.url),
);
const LAYOUT: [id: string, region: string][] = [
  ["eu-west-1", "eu-west"],
  ["eu-west-2", "eu-west"],
  ["us-east-1", "us-east"],
  ["us-east-2", "us-east"],
  ["ap-south-1", "ap-south"],
];

/** Starts the instances of LAYOUT; the first is the seed of the others. */
async function startFleet(dir: string): Promise<TestInstance[]> {
  const started: TestInstance[] = [];
  try {
    for (const [id, region] of LAYOUT) {
      started.push(
        await TestInstance.start({
          id,
          region,
          kvPath: `${dir}/${id}.kv`,
          seeds: started.length > 0 ? [started[0]!.url] : [],
        }),
      );
    }
  } catch (error) {
    await Promise.all(started.map((instance) => instance.stop()));
    throw error;
  }
  return started;
}

Deno.test({
  name: "dashboard shows an update reaching every instance",
  // Playwright keeps timers and pipes to the browser process between calls.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    try {
      await Deno.stat(CHROMIUM);
    } catch {
      throw new Error(
        `${CHROMIUM} not found; install Debian's chromium package (apt-get install -y chromium)`,
      );
    }
    const dir = await Deno.makeTempDir({ prefix: "grapevine-dashboard-" });
    const fleet = await startFleet(dir);
    const profile = await Deno.makeTempDir({ prefix: "grapevine-chromium-" });
    // The flags keep Chromium from reaching out to Google's services.
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 860 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const [first, , , writer] = fleet;
      const config = flattenConfig(
        parseConfigText(await Deno.readTextFile(FIXTURE), FIXTURE),
      );
      const sample = Object.fromEntries(Object.entries(config).slice(0, 12));
      await first!.client.batch({ set: sample });

      const page = browser.pages()[0] ?? await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(first!.url + "/");
      await page.waitForFunction(
        `document.querySelectorAll("#graph .node").length === ${fleet.length}`,
        undefined,
        { timeout: 15_000 },
      );
      await page.waitForSelector("#graph .link", { timeout: 15_000 });

      const put = await writer!.client.put("features.checkout-v2", {
        enabled: true,
        rollout_percent: 50,
      });
      const id = `features.checkout-v2@${put.version}`;
      await page.waitForSelector(
        `#update[data-update="${id}"][data-received="${fleet.length}"]`,
        { timeout: 15_000 },
      );
      const states = await page.$$eval(
        "#graph .node",
        (nodes) => nodes.map((node) => node.getAttribute("data-state")),
      );
      assert.equal(states.length, fleet.length);
      for (const state of states) {
        assert.ok(state === "spreading" || state === "done", `state ${state}`);
      }
      // Rumors stop once every link has the update or the share limit is
      // reached; then every instance shows "done sharing".
      await page.waitForFunction(
        `[...document.querySelectorAll("#graph .node")]
          .every((node) => node.dataset.state === "done")`,
        undefined,
        { timeout: 15_000 },
      );
      const summary = await page.textContent("#update .counts");
      assert.match(summary ?? "", /5 of 5 instances have it/);
      // The 12 fixture keys and the update.
      await page.waitForFunction(
        `document.querySelectorAll("#keys tbody tr").length === 13`,
        undefined,
        { timeout: 15_000 },
      );
      assert.deepEqual(errors, [], "no script errors");

      await page.screenshot({ path: SCREENSHOT });
      // Each pulse from sender to receiver ends after its animation.
      await page.waitForFunction(
        `document.querySelectorAll("#graph .pulse").length === 0`,
        undefined,
        { timeout: 5000 },
      );
      const png = await Deno.readFile(SCREENSHOT);
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "PNG");
    } catch (error) {
      for (const instance of fleet) {
        console.error(`--- logs of ${instance.options.id} ---`);
        console.error(instance.logs.slice(-100).join("\n"));
      }
      throw error;
    } finally {
      await browser.close();
      await Promise.all(fleet.map((instance) => instance.stop()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
