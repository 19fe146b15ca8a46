/**
 * Names the local process that opened a TCP connection, for the fault
 * proxy (Linux only).
 *
 * The client end of a loopback connection is a socket in the same network
 * namespace, so `/proc/net/tcp` (and `tcp6`) lists it with its inode: its
 * local port is the remote port the proxy sees, and its remote port is the
 * proxy's. A process owns the socket when one of its `/proc/PID/fd` links
 * reads `socket:[INODE]`. Only registered processes are searched, so a
 * lookup costs one read of the socket table and a scan of those processes'
 * descriptors.
 *
 * @module
 */

import type { SourceResolver } from "./fault_proxy.ts";

/** Processes by id, and the lookup of a connection's owner among them. */
export class ProcessSources {
  readonly #names = new Map<number, string>();

  /** Whether this system has the `/proc` files the lookup reads. */
  static supported(): boolean {
    try {
      Deno.statSync("/proc/net/tcp");
      return true;
    } catch {
      return false;
    }
  }

  /** Names the process `pid`; a restarted instance registers its new pid. */
  register(pid: number, name: string): void {
    this.#names.set(pid, name);
  }

  /** Forgets a process that exited. */
  unregister(pid: number): void {
    this.#names.delete(pid);
  }

  /** The lookup, for {@link FaultProxyOptions.resolveSource}. */
  readonly resolve: SourceResolver = async (remote, local) => {
    const inode = await socketInode(remote.port, local.port);
    if (inode === undefined) return undefined;
    const target = `socket:[${inode}]`;
    for (const [pid, name] of this.#names) {
      if (await ownsSocket(pid, target)) return name;
    }
    return undefined;
  };
}

/**
 * Returns the inode of the socket whose local port is `localPort` and whose
 * remote port is `remotePort`, from `/proc/net/tcp` and `/proc/net/tcp6`.
 */
export async function socketInode(
  localPort: number,
  remotePort: number,
): Promise<string | undefined> {
  const local = hexPort(localPort);
  const remote = hexPort(remotePort);
  for (const path of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let table: string;
    try {
      table = await Deno.readTextFile(path);
    } catch {
      continue;
    }
    for (const line of table.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const localAddress = fields[1]!;
      const remoteAddress = fields[2]!;
      if (
        localAddress.endsWith(`:${local}`) &&
        remoteAddress.endsWith(`:${remote}`) && fields[9] !== "0"
      ) {
        return fields[9];
      }
    }
  }
  return undefined;
}

async function ownsSocket(pid: number, target: string): Promise<boolean> {
  try {
    for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
      try {
        if (await Deno.readLink(`/proc/${pid}/fd/${entry.name}`) === target) {
          return true;
        }
      } catch {
        // The descriptor closed while we looked.
      }
    }
  } catch {
    // The process is gone.
  }
  return false;
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}
