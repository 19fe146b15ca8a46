/**
 * A rolling upgrade from the last build that spoke only protocol version 1
 * to this build: that build's files come from git history into a temporary
 * folder, and its instances run beside this build's instances.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { delay, TestFleet, TestInstance } from "./helpers/process.ts";

/** Last commit whose build speaks only protocol version 1. */
const VERSION_1_COMMIT = "fe070ff8d1b217a1b944ae3117c2105c29f41752";

const REPOSITORY = fileURLToPath(new URL("..", import.meta.url));

/** Whether git can read the version 1 commit here, and why not. */
function historyProblem(): string | undefined {
  try {
    const result = new Deno.Command("git", {
      args: ["cat-file", "-e", `${VERSION_1_COMMIT}^{commit}`],
      cwd: REPOSITORY,
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return result.success
      ? undefined
      : `commit ${VERSION_1_COMMIT} is not in this clone (a shallow clone?)`;
  } catch (error) {
    return `git failed: ${(error as Error).message}`;
  }
}

/** Extracts the version 1 build into a new temporary folder. */
async function extractVersion1(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-v1-build-" });
  const archive = await new Deno.Command("git", {
    args: ["archive", "--format=tar", VERSION_1_COMMIT],
    cwd: REPOSITORY,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!archive.success) {
    throw new Error(
      `git archive failed: ${new TextDecoder().decode(archive.stderr)}`,
    );
  }
  const tar = new Deno.Command("tar", {
    args: ["-x", "-C", dir],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = tar.stdin.getWriter();
  await writer.write(archive.stdout);
  await writer.close();
  const extracted = await tar.output();
  if (!extracted.success) {
    throw new Error(
      `tar failed: ${new TextDecoder().decode(extracted.stderr)}`,
    );
  }
  return dir;
}

/** Returns the names of the frame counters that count dropped frames. */
function droppedFrames(counters: Record<string, number>): string[] {
  return Object.keys(counters).filter((name) =>
    name.startsWith("invalid_frames") || name.startsWith("frame_errors")
  );
}

const problem = historyProblem();
if (problem) console.warn(`rolling upgrade test skipped: ${problem}`);

Deno.test({
  name: "rolling upgrade from version 1 loses nothing",
  ignore: problem !== undefined,
  async fn() {
    const build = await extractVersion1();
    await using fleet = await TestFleet.start(3, {
      flags: ["--log-level", "info"],
    });
    const add = async (id: string) => {
      const instance = await TestInstance.start({
        id,
        kvPath: `${fleet.dir}/${id}.kv`,
        seeds: [fleet.get("n1").url],
        flags: ["--log-level", "info"],
        build,
      });
      fleet.instances.push(instance);
    };
    try {
      // Three instances of this build and three of the version 1 build. The
      // first run of that build fills its node_modules, so it runs alone.
      await add("o1");
      await Promise.all([add("o2"), add("o3")]);

      // Writes on both sides reach every instance.
      for (const [index, instance] of fleet.instances.entries()) {
        await instance.client.put(`roll.before.${instance.options.id}`, index);
      }
      let reports = await fleet.waitConverged({
        entries: 6,
        timeoutMs: 20_000,
      });
      for (const report of reports) {
        const expected = report.id.startsWith("o") ? 1 : 2;
        assert.equal(report.protocol, expected, `protocol of ${report.id}`);
      }
      const current = reports.filter((report) => report.id.startsWith("n"));
      const mixed = current.flatMap((report) =>
        report.links.filter((link) => link.peer.startsWith("o"))
      );
      assert.ok(mixed.length > 0, "links between the builds are up");
      for (const link of mixed) {
        assert.equal(link.protocol, 1, `link to ${link.peer}`);
      }
      for (const report of reports) {
        assert.deepEqual(droppedFrames(report.counters), [], report.id);
      }

      // Replace each version 1 instance with this build, on its KV file,
      // writing on another instance after each step.
      for (const id of ["o1", "o2", "o3"]) {
        const old = fleet.get(id);
        await old.stop();
        await fleet.restart(old, {
          build: undefined,
          seeds: [fleet.get("n1").url],
        });
        await fleet.get("n2").client.put(`roll.after.${id}`, id);
      }
      reports = await fleet.waitConverged({ entries: 9, timeoutMs: 20_000 });
      for (const report of reports) {
        assert.deepEqual(droppedFrames(report.counters), [], report.id);
      }

      // Once every instance runs this build, links move to version 2.
      const deadline = Date.now() + 15_000;
      let versions: number[] = [];
      while (Date.now() < deadline) {
        reports = await Promise.all(
          fleet.instances.map((instance) => instance.status()),
        );
        versions = reports.flatMap((report) =>
          report.links.map((link) => link.protocol ?? 0)
        );
        if (versions.length > 0 && versions.every((v) => v === 2)) break;
        await delay(200);
      }
      assert.ok(versions.length > 0, "links are up after the upgrade");
      assert.deepEqual([...new Set(versions)], [2]);
    } catch (error) {
      fleet.dumpLogs();
      throw error;
    } finally {
      await Deno.remove(build, { recursive: true }).catch(() => {});
    }
  },
});
