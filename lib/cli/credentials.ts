/**
 * Credentials of the client commands: the bearer token and the publisher's
 * signing key. Both come from environment variables or files, never from
 * the command line, so they do not show in shell history or `ps`.
 *
 * @module
 */

import { PublisherSigner } from "../security/signatures.ts";
import { type Args, type OptionSpec, UsageError } from "./command.ts";

/** Variable with the admin token, which allows reads and writes. */
export const ADMIN_TOKEN_ENV = "GRAPEVINE_ADMIN_TOKEN";
/** Variable with the read token, used when no admin token is set. */
export const READ_TOKEN_ENV = "GRAPEVINE_READ_TOKEN";
/** Variable with the publisher's private key, for signed updates. */
export const SIGNING_KEY_ENV = "GRAPEVINE_SIGNING_KEY";

/** The `--token-file` option. */
export const tokenOption: Record<string, OptionSpec> = {
  "token-file": {
    type: "string",
    value: "PATH",
    help:
      `File holding the bearer token (default: $${ADMIN_TOKEN_ENV}, else $${READ_TOKEN_ENV})`,
  },
};

/** The `--signing-key-file` option. */
export const signingOption: Record<string, OptionSpec> = {
  "signing-key-file": {
    type: "string",
    value: "PATH",
    help:
      `File holding the publisher's private key, to sign updates (default: $${SIGNING_KEY_ENV} when set)`,
  },
};

async function readSecretFile(path: string, option: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(
      `Cannot read --${option} ${path}: ${(error as Error).message}`,
    );
  }
  const secret = text.trim();
  if (secret === "") throw new UsageError(`--${option} ${path} is empty`);
  return secret;
}

/**
 * Returns the bearer token: the contents of `--token-file`, else the admin
 * token variable, else the read token variable; `undefined` without one.
 * A variable may list several tokens, as an instance's may during a
 * rotation; the first one is sent.
 */
export async function readToken(args: Args): Promise<string | undefined> {
  const file = args.values["token-file"];
  if (typeof file === "string") return await readSecretFile(file, "token-file");
  for (const name of [ADMIN_TOKEN_ENV, READ_TOKEN_ENV]) {
    const first = Deno.env.get(name)?.split(",")[0]?.trim();
    if (first) return first;
  }
  return undefined;
}

/**
 * Returns a signer for the key of `--signing-key-file` or of the publisher
 * key variable; `undefined` when neither is set.
 */
export async function readSigner(
  args: Args,
): Promise<PublisherSigner | undefined> {
  const file = args.values["signing-key-file"];
  const text = typeof file === "string"
    ? await readSecretFile(file, "signing-key-file")
    : Deno.env.get(SIGNING_KEY_ENV)?.trim();
  if (!text) return undefined;
  return await PublisherSigner.fromPrivateKey(text);
}
