/**
 * Entrypoint of a Grapevine instance on Deno Deploy, which runs a module
 * without command-line arguments.
 *
 * Settings come from `GRAPEVINE_*` variables, as for `main.ts serve`, with
 * two different defaults: the instance advertises no URL, because peers
 * cannot dial an isolate on Deno Deploy, and it listens on 0.0.0.0. Without
 * `GRAPEVINE_KV_PATH` it opens the app's Deno KV database with
 * `Deno.openKv()` and no path; with one, it opens that file, as tests do.
 *
 * @module
 */

import { resolveSettings, settingsFromEnv } from "../config.ts";
import { Instance } from "../instance.ts";
import { KvStore } from "../store/kv_store.ts";

const settings = resolveSettings({
  advertiseUrl: "none",
  host: "0.0.0.0",
  ...settingsFromEnv(),
});
const store = await KvStore.open(settings.kvPath || undefined);
const instance = await Instance.start(settings, { store });

const stop = () => {
  instance.log.info("signal received; stopping");
  instance.close().then(() => Deno.exit(0));
};
try {
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
} catch (error) {
  // NOTE: whether Deno Deploy allows signal listeners is not checked; an
  // isolate that cannot listen is stopped by the platform without a goodbye.
  instance.log.warn("cannot listen for stop signals", { error });
}
