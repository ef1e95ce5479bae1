import type { PeerInfo } from './transport.js';

/** Who is online, from retained `life/online` messages and the Wills that clear them. */
export class PresenceTable {
  private readonly peers = new Map<string, PeerInfo>();

  constructor(private readonly onChange?: (peer: PeerInfo) => void) {}

  online(id: string, cell: string, role: string | undefined, now: number): void {
    const before = this.peers.get(id);
    const peer: PeerInfo = {
      id,
      cell,
      online: true,
      since: before?.online ? before.since : now,
      ...(role ? { role } : {}),
    };
    this.peers.set(id, peer);
    if (!before?.online) this.onChange?.(peer);
  }

  offline(id: string, cell: string, now: number): void {
    const before = this.peers.get(id);
    if (before && !before.online) return;
    const peer: PeerInfo = { ...(before ?? { id, cell }), online: false, since: now };
    this.peers.set(id, peer);
    this.onChange?.(peer);
  }

  list(): PeerInfo[] {
    return [...this.peers.values()].sort((a, b) => a.id.localeCompare(b.id));
  }
}
