/**
 * TLS: instances serve HTTPS with a certificate from a CA made at test time
 * (with the openssl command), advertise https:// URLs and dial each other
 * over wss:// trusting that CA through the tlsCa setting.
 */

import assert from "node:assert/strict";
import { randomSecret } from "../lib/cli/keygen.ts";
import { GrapevineClient } from "../lib/client.ts";
import { TestFleet, type TestInstance } from "./helpers/process.ts";

async function openssl(args: string[], dir: string): Promise<void> {
  const output = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
}

/** Writes ca.pem, server.pem and server.key for 127.0.0.1 into `dir`. */
async function makeCertificates(dir: string): Promise<void> {
  const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  await openssl([
    "req",
    "-x509",
    ...curve,
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Grapevine test CA",
  ], dir);
  await openssl([
    "req",
    ...curve,
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  ], dir);
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "server.ext",
  ], dir);
}

Deno.test("instances gossip over TLS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-tls-" });
  try {
    await makeCertificates(dir);
    await using fleet = await TestFleet.start(2, {
      env: { GRAPEVINE_FLEET_KEYS: randomSecret() },
      flags: [
        "--tls-cert",
        `${dir}/server.pem`,
        "--tls-key",
        `${dir}/server.key`,
        "--tls-ca",
        `${dir}/ca.pem`,
      ],
    });
    const [a, b] = fleet.instances as [TestInstance, TestInstance];
    assert.match(a.url, /^https:\/\/127\.0\.0\.1:\d+$/);

    // The test's own client trusts the CA; without it the request fails.
    const httpClient = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)],
    });
    try {
      const client = (url: string) =>
        new GrapevineClient(url, {
          fetch: (input, init) => fetch(input, { ...init, client: httpClient }),
        });
      await client(a.url).put("over.tls", { secure: true });
      const deadline = Date.now() + 10_000;
      let copy = await client(b.url).get("over.tls");
      while (!copy && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        copy = await client(b.url).get("over.tls");
      }
      assert.deepEqual(copy?.value, { secure: true });
      const status = await client(b.url).status();
      assert.equal(status.links.length, 1, "b linked to a over wss://");
      await assert.rejects(
        new GrapevineClient(a.url).status(),
        /certificate|UnknownIssuer|failed/i,
      );
    } finally {
      httpClient.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
