import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * Fault injection between gateways and their MQTT broker (benchmarks, tests, the HIL bench's
 * `--loss` and partitions): a TCP proxy that loses a fraction of the PUBLISH packets the broker sends
 * to its clients, as a lossy last hop would (a radio link, an overloaded bridge), and can cut every
 * connection (a partition). TCP itself would retransmit lost segments, so the loss is made at the
 * MQTT packet level: a dropped QoS 1 PUBLISH is acknowledged to the broker by the proxy (the broker
 * believes it delivered it), so that only the application-level acknowledgement can recover it.
 */
export interface LossyProxy {
  port: number;
  url: string;
  readonly dropped: number;
  readonly forwarded: number;
  /** Clients connected through it now. */
  readonly connections: number;
  /** Changes the fraction of PUBLISH packets lost from now on. */
  setLoss(fraction: number): void;
  /** While on, every connection is cut and new ones are refused; the clients reconnect when it ends. */
  partition(on: boolean): void;
  close(): Promise<void>;
}

export async function startLossyProxy(
  brokerPort: number,
  lossFraction: number,
  random: () => number,
  brokerHost = '127.0.0.1',
  listenHost = '127.0.0.1',
): Promise<LossyProxy> {
  const sockets = new Set<Socket>();
  const stats = { dropped: 0, forwarded: 0, connections: 0 };
  let loss = lossFraction;
  let partitioned = false;
  const server: Server = createServer((client) => {
    if (partitioned) {
      client.destroy();
      return;
    }
    const broker = createConnection(brokerPort, brokerHost);
    stats.connections++;
    sockets.add(client);
    sockets.add(broker);
    client.setNoDelay(true);
    broker.setNoDelay(true);
    client.on('data', (d) => broker.write(d));
    let pending = Buffer.alloc(0);
    broker.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      const out: Buffer[] = [];
      for (;;) {
        const packet = nextPacket(pending);
        if (!packet) break;
        pending = pending.subarray(packet.length);
        const bytes = packet.bytes;
        const type = (bytes[0] ?? 0) >> 4;
        if (type === 3 && random() < loss) {
          stats.dropped++;
          const qos = ((bytes[0] ?? 0) >> 1) & 3;
          if (qos === 1) {
            const topicLength = bytes.readUInt16BE(packet.headerLength);
            const id = bytes.readUInt16BE(packet.headerLength + 2 + topicLength);
            broker.write(Buffer.from([0x40, 0x02, id >> 8, id & 0xff]));
          }
          continue;
        }
        if (type === 3) stats.forwarded++;
        out.push(bytes);
      }
      if (out.length > 0) client.write(Buffer.concat(out));
    });
    let ended = false;
    const end = () => {
      if (!ended) stats.connections--;
      ended = true;
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on('close', end);
    broker.on('close', end);
    client.on('error', end);
    broker.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `mqtt://${listenHost}:${port}`,
    setLoss: (fraction) => {
      loss = fraction;
    },
    partition: (on) => {
      partitioned = on;
      if (on) for (const s of sockets) s.destroy();
    },
    get dropped() {
      return stats.dropped;
    },
    get forwarded() {
      return stats.forwarded;
    },
    get connections() {
      return stats.connections;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The first complete MQTT packet in `buf` (fixed header with its variable-length remaining length). */
function nextPacket(buf: Buffer): { bytes: Buffer; length: number; headerLength: number } | undefined {
  if (buf.length < 2) return undefined;
  let multiplier = 1;
  let remaining = 0;
  let i = 1;
  for (;;) {
    if (i >= buf.length) return undefined;
    const byte = buf[i] as number;
    remaining += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    i++;
    if ((byte & 0x80) === 0) break;
    if (i > 4) throw new Error('malformed MQTT remaining length');
  }
  const length = i + remaining;
  if (buf.length < length) return undefined;
  return { bytes: buf.subarray(0, length), length, headerLength: i };
}
