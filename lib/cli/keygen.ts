/**
 * `main.ts keygen`: generates fleet keys, tokens and publisher key pairs
 * from the operating system's random source.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { generatePublisherKey } from "../security/signatures.ts";
import { type Command, requireString, UsageError } from "./command.ts";

/** Returns 32 random bytes in base64url: a fleet key or a token. */
export function randomSecret(): string {
  return Buffer.from(randomBytes(32)).toString("base64url");
}

const fleetKeyCommand: Command = {
  name: "keygen fleet",
  usage: "",
  summary:
    "Print a new random fleet key (32 bytes, base64url) for GRAPEVINE_FLEET_KEYS.",
  options: {},
  run() {
    console.log(randomSecret());
    return Promise.resolve(0);
  },
};

const tokenCommand: Command = {
  name: "keygen token",
  usage: "",
  summary:
    "Print a new random token (32 bytes, base64url) for GRAPEVINE_ADMIN_TOKEN or GRAPEVINE_READ_TOKEN.",
  options: {},
  run() {
    console.log(randomSecret());
    return Promise.resolve(0);
  },
};

const publisherCommand: Command = {
  name: "keygen publisher",
  usage: "--out FILE",
  summary:
    "Write a new Ed25519 publisher private key to FILE (mode 0600) and print its public key for the publisherKeys setting.",
  options: {
    out: {
      type: "string",
      value: "FILE",
      help: "File to write the private key to; it must not exist yet",
    },
  },
  async run(args) {
    const out = requireString(args, "out");
    const pair = await generatePublisherKey();
    try {
      await Deno.writeTextFile(out, pair.privateKey + "\n", {
        createNew: true,
        mode: 0o600,
      });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new UsageError(
          `${out} already exists; choose another --out or delete it first`,
        );
      }
      throw error;
    }
    console.log(pair.publicKey);
    console.error(
      `wrote the private key to ${out}; give the public key above to every instance as --publisher-keys or GRAPEVINE_PUBLISHER_KEYS`,
    );
    return 0;
  },
};

/** The `keygen` command. */
export const keygenCommand: Command = {
  name: "keygen",
  usage: "fleet | token | publisher --out FILE",
  summary:
    "Generate a fleet key, an access token or a publisher key pair. Keys and tokens are printed, never stored by this command, except the publisher's private key, which goes to a file.",
  options: {},
  subcommands: [fleetKeyCommand, tokenCommand, publisherCommand],
  run() {
    // runCommand hands the arguments to a subcommand instead.
    return Promise.reject(new UsageError("Missing subcommand of keygen"));
  },
};
