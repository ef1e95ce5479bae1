import { ErrorCode, P2PError } from '../../core/errors.js';

/** A classic CAN frame: 11-bit (or 29-bit, `extended`) identifier and 0-8 data bytes. */
export interface CanFrame {
  id: number;
  data: Buffer;
  extended?: boolean;
}

export type CanListener = (frame: CanFrame) => void;

/** A CAN interface: SocketCAN on a gateway, or the in-process mock bus. */
export interface CanBus {
  readonly name: string;
  send(frame: CanFrame): void;
  /** Returns a function that removes the listener. */
  onFrame(listener: CanListener): () => void;
  close(): Promise<void>;
}

function checkFrame(frame: CanFrame): void {
  const max = frame.extended ? 0x1fffffff : 0x7ff;
  if (!Number.isInteger(frame.id) || frame.id < 0 || frame.id > max)
    throw new P2PError(ErrorCode.hal, `CAN id 0x${frame.id.toString(16)} is out of range`, { component: 'can' });
  if (frame.data.length > 8)
    throw new P2PError(ErrorCode.hal, `CAN frame 0x${frame.id.toString(16)} has ${frame.data.length} bytes (max 8)`, {
      component: 'can',
    });
}

/**
 * An in-process CAN bus at the frame level (this machine's kernel has no vcan): every node attached
 * to the same name sees every frame another node sends, as on a real bus, not its own.
 */
export class MockCanBus implements CanBus {
  private static readonly buses = new Map<string, Set<MockCanBus>>();
  private readonly listeners = new Set<CanListener>();
  private closed = false;

  constructor(readonly name: string) {
    const peers = MockCanBus.buses.get(name) ?? new Set();
    peers.add(this);
    MockCanBus.buses.set(name, peers);
  }

  send(frame: CanFrame): void {
    if (this.closed) throw new P2PError(ErrorCode.hal, `CAN bus ${this.name} is closed`, { component: 'can' });
    checkFrame(frame);
    for (const node of MockCanBus.buses.get(this.name) ?? []) {
      if (node === this) continue;
      const copy = { ...frame, data: Buffer.from(frame.data) };
      for (const l of node.listeners) queueMicrotask(() => l(copy));
    }
  }

  onFrame(listener: CanListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    MockCanBus.buses.get(this.name)?.delete(this);
  }
}

interface RawChannel {
  addListener(event: 'onMessage', cb: (m: { id: number; data: Buffer; ext?: boolean }) => void): void;
  send(m: { id: number; data: Buffer; ext?: boolean }): void;
  start(): void;
  stop(): void;
}

/** SocketCAN through the optional `socketcan` module, loaded only when a real interface is used. */
export class SocketCanBus implements CanBus {
  private readonly listeners = new Set<CanListener>();

  private constructor(
    readonly name: string,
    private readonly channel: RawChannel,
  ) {
    channel.addListener('onMessage', (m) => {
      const frame = { id: m.id, data: Buffer.from(m.data), ...(m.ext ? { extended: true } : {}) };
      for (const l of this.listeners) l(frame);
    });
    channel.start();
  }

  static async open(iface: string): Promise<SocketCanBus> {
    let socketcan: { createRawChannel(iface: string, timestamps?: boolean): RawChannel };
    try {
      // A name in a variable keeps the compiler from needing the module's (absent) type declarations.
      const moduleName = 'socketcan';
      socketcan = (await import(moduleName)) as typeof socketcan;
    } catch (err) {
      throw new P2PError(
        ErrorCode.unavailable,
        `CAN on ${iface} needs the socketcan module, which is not available here`,
        {
          component: 'can',
          cause: err,
          hint: 'npm ci with install scripts allowed for socketcan, on Linux',
        },
      );
    }
    try {
      return new SocketCanBus(iface, socketcan.createRawChannel(iface, true));
    } catch (err) {
      throw new P2PError(ErrorCode.unavailable, `cannot open CAN interface ${iface}: ${(err as Error).message}`, {
        component: 'can',
        cause: err,
        hint: `ip link set ${iface} up type can bitrate 500000`,
      });
    }
  }

  send(frame: CanFrame): void {
    checkFrame(frame);
    this.channel.send({ id: frame.id, data: frame.data, ...(frame.extended ? { ext: true } : {}) });
  }

  onFrame(listener: CanListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.channel.stop();
  }
}

/**
 * A SocketCAN interface opened in the background, for device setup that cannot wait: frames sent
 * before it is open are dropped, listeners are attached when it opens, and `failure` tells why it
 * could not open (the device reports it instead of stale values).
 */
export class DeferredCanBus implements CanBus {
  private bus: CanBus | undefined;
  failure: P2PError | undefined;
  private readonly listeners = new Set<CanListener>();
  private readonly opening: Promise<void>;

  constructor(readonly name: string) {
    this.opening = SocketCanBus.open(name).then(
      (bus) => {
        this.bus = bus;
        bus.onFrame((f) => {
          for (const l of this.listeners) l(f);
        });
      },
      (err: unknown) => {
        this.failure =
          err instanceof P2PError ? err : new P2PError(ErrorCode.unavailable, String(err), { component: 'can' });
      },
    );
  }

  send(frame: CanFrame): void {
    this.bus?.send(frame);
  }

  onFrame(listener: CanListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    await this.opening;
    await this.bus?.close();
  }
}

/** `mock:<name>` is the in-process bus; anything else a SocketCAN interface (`can0`). */
export async function openCanBus(iface: string): Promise<CanBus> {
  return iface.startsWith('mock:') ? new MockCanBus(iface.slice(5)) : SocketCanBus.open(iface);
}
