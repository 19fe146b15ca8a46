/**
 * SWIM failure detection (Das, Gupta and Motivala, DSN 2002) with the local
 * health awareness of Lifeguard (Dadgar et al., 2018).
 *
 * Once per probe interval the node probes one member, going round-robin
 * through a shuffled list. If no acknowledgement arrives within the probe
 * timeout, it asks `indirectProbes` other members to probe the target for
 * it; an acknowledgement relayed by any of them counts. A target still
 * silent at the end of the interval becomes `suspect`, and a suspect that
 * does not refute within the suspicion timeout becomes `dead`. The timeout
 * is `suspicionMult × max(1, log10(N)) × probeIntervalMs`, as in memberlist,
 * so it grows with the fleet.
 *
 * Awareness: each probe that fails and each accusation this node has to
 * refute raise a score (at most `maxAwareness`); each probe that succeeds
 * lowers it. Probe intervals and timeouts are multiplied by score + 1, so a
 * node that is itself slow waits longer before it accuses others.
 *
 * @module
 */

import type { Counters } from "./counters.ts";
import { type Member, MemberTable } from "./membership.ts";
import type { FrameOf, MemberUpdate } from "./messages.ts";
import { shuffle } from "./rumors.ts";

/** Settings of the failure detector. */
export interface SwimSettings {
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly indirectProbes: number;
  readonly suspicionMult: number;
  readonly deadMemberRetentionMs: number;
  readonly maxAwareness: number;
}

/** A probe or an acknowledgement without its piggybacked updates. */
export type ProbeFrame = Omit<
  FrameOf<"probe"> | FrameOf<"probe_ack">,
  "updates"
>;

/** Services the failure detector takes from its node. */
export interface SwimHost {
  readonly members: MemberTable;
  readonly counters: Counters;
  now(): number;
  random(): number;
  /** Sends a frame to a member by link or over HTTP; false if it cannot. */
  sendTo(member: Member, frame: ProbeFrame): boolean;
  /** Applies a membership update and spreads it. */
  declare(update: MemberUpdate): void;
}

interface PendingProbe {
  readonly target: string;
  readonly startedMs: number;
  indirectSent: boolean;
  /** Set when this node probes on behalf of another one. */
  readonly relayFor?: { readonly requester: string; readonly seq: number };
}

/**
 * The probe loop of one node.
 *
 * @example
 * ```ts ignore
 * const detector = new FailureDetector(settings, host);
 * detector.tick(); // from the node's timer
 * ```
 */
export class FailureDetector {
  readonly #settings: SwimSettings;
  readonly #host: SwimHost;
  readonly #pending = new Map<number, PendingProbe>();
  #order: string[] = [];
  #seq = 0;
  #nextProbeMs: number;
  #awareness = 0;

  constructor(settings: SwimSettings, host: SwimHost) {
    this.#settings = settings;
    this.#host = host;
    this.#nextProbeMs = host.now() + host.random() * settings.probeIntervalMs;
  }

  /** The local health score: 0 is healthy, `maxAwareness` the worst. */
  get awareness(): number {
    return this.#awareness;
  }

  /** Suspicion timeout for the current fleet size, in milliseconds. */
  suspicionTimeoutMs(): number {
    const members = Math.max(1, this.#host.members.liveCount);
    return this.#settings.suspicionMult *
      Math.max(1, Math.log10(members)) * this.#settings.probeIntervalMs;
  }

  /** Runs timeouts and starts the next probe when it is due. */
  tick(): void {
    const now = this.#host.now();
    this.#checkPending(now);
    this.#expireSuspicions(now);
    this.#host.members.prune(now, this.#settings.deadMemberRetentionMs);
    if (now >= this.#nextProbeMs) {
      this.#nextProbeMs = now + this.#scaled(this.#settings.probeIntervalMs);
      const target = this.#nextTarget();
      if (target) this.#probe(target, now);
    }
  }

  /** Probes a member now, out of turn; used when its link drops. */
  probeSoon(id: string): void {
    for (const pending of this.#pending.values()) {
      if (pending.target === id && !pending.relayFor) return;
    }
    const member = this.#host.members.get(id);
    if (member && (member.state === "alive" || member.state === "suspect")) {
      this.#probe(member, this.#host.now());
    }
  }

  /**
   * Handles a probe. Returns the acknowledgement when the probe is for this
   * node; relays it when it names another target.
   */
  onProbe(frame: FrameOf<"probe">): ProbeFrame | undefined {
    const members = this.#host.members;
    if (frame.target === members.self.id) {
      return {
        v: 1,
        type: "probe_ack",
        seq: frame.seq,
        from: MemberTable.info(members.self),
        target: members.self.id,
      };
    }
    const target = members.get(frame.target);
    if (!target || target.state === "dead" || target.state === "left") {
      return undefined;
    }
    const seq = ++this.#seq;
    this.#pending.set(seq, {
      target: target.id,
      startedMs: this.#host.now(),
      indirectSent: true,
      relayFor: { requester: frame.from.id, seq: frame.seq },
    });
    this.#host.counters.inc("probes_sent", { kind: "relay" });
    if (!this.#send(target, seq, target.id)) this.#pending.delete(seq);
    return undefined;
  }

  /** Handles an acknowledgement of a probe this node sent or relayed. */
  onAck(frame: FrameOf<"probe_ack">): void {
    const pending = this.#pending.get(frame.seq);
    if (!pending || pending.target !== frame.target) return;
    this.#pending.delete(frame.seq);
    const members = this.#host.members;
    members.touch(pending.target, this.#host.now());
    if (pending.relayFor) {
      const requester = members.get(pending.relayFor.requester);
      if (requester) {
        this.#host.sendTo(requester, {
          v: 1,
          type: "probe_ack",
          seq: pending.relayFor.seq,
          from: MemberTable.info(members.self),
          target: pending.target,
        });
      }
      return;
    }
    this.#host.counters.inc("probes_acked");
    this.#awareness = Math.max(0, this.#awareness - 1);
  }

  /** Raises the awareness score after this node had to refute an accusation. */
  noteRefutation(): void {
    this.#raiseAwareness();
  }

  #probe(target: Member, now: number): void {
    const seq = ++this.#seq;
    this.#pending.set(seq, {
      target: target.id,
      startedMs: now,
      indirectSent: false,
    });
    this.#host.counters.inc("probes_sent", { kind: "direct" });
    if (!this.#send(target, seq, target.id)) this.#pending.delete(seq);
  }

  #send(member: Member, seq: number, target: string): boolean {
    return this.#host.sendTo(member, {
      v: 1,
      type: "probe",
      seq,
      from: MemberTable.info(this.#host.members.self),
      target,
    });
  }

  #checkPending(now: number): void {
    const timeout = this.#scaled(this.#settings.probeTimeoutMs);
    const period = this.#scaled(this.#settings.probeIntervalMs);
    for (const [seq, pending] of this.#pending) {
      const age = now - pending.startedMs;
      if (pending.relayFor) {
        if (age >= timeout) this.#pending.delete(seq);
        continue;
      }
      if (!pending.indirectSent && age >= timeout) {
        pending.indirectSent = true;
        this.#askOthers(seq, pending.target);
      }
      if (age >= Math.max(period, 2 * timeout)) {
        this.#pending.delete(seq);
        this.#failed(pending.target);
      }
    }
  }

  /** Asks up to `indirectProbes` other members to probe the target. */
  #askOthers(seq: number, target: string): void {
    const helpers = shuffle(
      this.#host.members.others().filter((member) =>
        member.id !== target && member.state === "alive"
      ),
      this.#host.random,
    );
    let asked = 0;
    for (const helper of helpers) {
      if (asked >= this.#settings.indirectProbes) break;
      if (this.#send(helper, seq, target)) {
        asked++;
        this.#host.counters.inc("probes_sent", { kind: "indirect" });
      }
    }
  }

  #failed(id: string): void {
    this.#host.counters.inc("probes_failed");
    this.#raiseAwareness();
    const member = this.#host.members.get(id);
    if (member?.state !== "alive") return;
    this.#host.declare({ ...MemberTable.info(member), state: "suspect" });
  }

  #expireSuspicions(now: number): void {
    const timeout = this.suspicionTimeoutMs();
    for (const member of this.#host.members.others()) {
      if (member.state === "suspect" && now - member.stateSinceMs >= timeout) {
        this.#host.declare({ ...MemberTable.info(member), state: "dead" });
      }
    }
  }

  #nextTarget(): Member | undefined {
    const members = this.#host.members;
    for (let attempts = 0; attempts < 2; attempts++) {
      while (this.#order.length > 0) {
        const member = members.get(this.#order.pop()!);
        if (
          member && (member.state === "alive" || member.state === "suspect")
        ) {
          return member;
        }
      }
      this.#order = shuffle(
        members.others().map((member) => member.id),
        this.#host.random,
      );
    }
    return undefined;
  }

  #scaled(ms: number): number {
    return ms * (this.#awareness + 1);
  }

  #raiseAwareness(): void {
    this.#awareness = Math.min(
      this.#settings.maxAwareness,
      this.#awareness + 1,
    );
  }
}
