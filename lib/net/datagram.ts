/**
 * Frames sent to an instance without a link: each one is a
 * `POST /v1/probe`, and the answer, if any, comes back in the response body.
 * SWIM's probes need to reach any member, not only linked ones; this is the
 * HTTP stand-in for the UDP datagrams of the original protocol. With fleet
 * keys set, the request carries a dial proof and the answer must carry the
 * responder's proof, as for anti-entropy over HTTP.
 *
 * @module
 */

import { encodeFrame, type Frame, parseFrame } from "../protocol/messages.ts";
import { AUTH_HEADER, type FleetAuth } from "../security/fleet_auth.ts";

/**
 * Sends one frame to `url` and returns the answering frame, or `undefined`
 * when there is none. Never throws: a failure, a timeout or an answer
 * without a valid proof returns `undefined`, like a lost datagram.
 */
export async function sendDatagram(options: {
  url: string;
  frame: Frame;
  timeoutMs: number;
  maxFrameBytes: number;
  signal: AbortSignal;
  auth?: FleetAuth;
  client?: Deno.HttpClient;
}): Promise<Frame | undefined> {
  const { url, frame, timeoutMs, maxFrameBytes, signal, auth } = options;
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal.addEventListener("abort", abort);
  const timer = setTimeout(abort, timeoutMs);
  try {
    const body = encodeFrame(frame);
    const proof = auth?.enabled ? auth.dialProof("probe", body) : undefined;
    const response = await fetch(new URL("/v1/probe", url), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(proof ? { [AUTH_HEADER]: proof.header } : {}),
      },
      body,
      signal: controller.signal,
      client: options.client,
    });
    const text = await response.text();
    if (response.status !== 200 || text === "") return undefined;
    const trusted = !proof ||
      auth!.checkResponse(response.headers.get(AUTH_HEADER), proof, text);
    if (!trusted) return undefined;
    const parsed = parseFrame(text, maxFrameBytes);
    return parsed.ok ? parsed.frame : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", abort);
  }
}
