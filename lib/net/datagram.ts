/**
 * Frames sent to an instance without a link: each one is a
 * `POST /v1/probe`, and the answer, if any, comes back in the response body.
 * SWIM's probes need to reach any member, not only linked ones; this is the
 * HTTP stand-in for the UDP datagrams of the original protocol.
 *
 * @module
 */

import { encodeFrame, type Frame, parseFrame } from "../protocol/messages.ts";

/**
 * Sends one frame to `url` and returns the answering frame, or `undefined`
 * when there is none. Never throws: a failure or a timeout returns
 * `undefined`, like a lost datagram.
 */
export async function sendDatagram(options: {
  url: string;
  frame: Frame;
  timeoutMs: number;
  maxFrameBytes: number;
  signal: AbortSignal;
}): Promise<Frame | undefined> {
  const { url, frame, timeoutMs, maxFrameBytes, signal } = options;
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal.addEventListener("abort", abort);
  const timer = setTimeout(abort, timeoutMs);
  try {
    const response = await fetch(new URL("/v1/probe", url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: encodeFrame(frame),
      signal: controller.signal,
    });
    const text = await response.text();
    if (response.status !== 200 || text === "") return undefined;
    const parsed = parseFrame(text, maxFrameBytes);
    return parsed.ok ? parsed.frame : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", abort);
  }
}
