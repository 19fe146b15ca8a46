/**
 * Builds an instance's security context from its settings and the
 * environment: fleet keys, access tokens and publisher keys. Secrets come
 * only from environment variables named by settings, never from flags, and
 * no error message or log line contains one.
 *
 * @module
 */

import type { Settings } from "../config.ts";
import { FleetAuth, Keyring } from "./fleet_auth.ts";
import { EntryVerifier } from "./signatures.ts";
import { AccessTokens } from "./tokens.ts";

/** The security parts of one instance. */
export interface Security {
  readonly auth: FleetAuth;
  readonly tokens: AccessTokens;
  /** Present when the instance requires publisher signatures. */
  readonly verifier: EntryVerifier | undefined;
}

/** The settings {@link loadSecurity} reads. */
export type SecuritySettings = Pick<
  Settings,
  | "fleetKeysEnv"
  | "adminTokenEnv"
  | "readTokenEnv"
  | "readAccess"
  | "publisherKeys"
>;

/**
 * Reads fleet keys and tokens from the environment variables that the
 * settings name, and imports the publisher keys.
 *
 * @throws {KeyringError | TokenError | PublisherKeyError} when a secret
 * cannot be used; the message names the variable, never its value.
 */
export async function loadSecurity(
  settings: SecuritySettings,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<Security> {
  const keyring = Keyring.parse(
    env(settings.fleetKeysEnv) ?? "",
    settings.fleetKeysEnv,
  );
  const tokens = new AccessTokens({
    admin: env(settings.adminTokenEnv),
    read: env(settings.readTokenEnv),
    readAccess: settings.readAccess,
  });
  const verifier = settings.publisherKeys.length > 0
    ? await EntryVerifier.fromPublicKeys(settings.publisherKeys)
    : undefined;
  return { auth: new FleetAuth(keyring), tokens, verifier };
}

/** Warnings about open doors, written once at start. */
export function securityWarnings(
  security: Security,
  settings: SecuritySettings,
): string[] {
  const warnings: string[] = [];
  if (!security.auth.enabled) {
    warnings.push(
      `no fleet keys in ${settings.fleetKeysEnv}: anyone who reaches this instance can join the fleet and change its config; fine for local development only`,
    );
  }
  if (!security.tokens.writesProtected) {
    warnings.push(
      `no admin token in ${settings.adminTokenEnv}: anyone who reaches the HTTP API can write config; fine for local development only`,
    );
  }
  return warnings;
}
