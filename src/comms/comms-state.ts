import { z } from 'zod';
import { readJsonIfPresent, writeFileAtomic } from '../core/atomic-file.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { MAX_OLDER_EPOCHS, type ReplaySnapshot } from './replay-guard.js';

const EpochSeen = z.object({
  epoch: z.number().int().nonnegative(),
  highest: z.record(z.string(), z.number().int()),
  holes: z.record(z.string(), z.array(z.number().int().nonnegative()).max(4096)).optional(),
});

const StateSchema = z.object({
  v: z.literal(1),
  /** The epoch this gateway used last; the next start uses a higher one. */
  epoch: z.number().int().nonnegative(),
  /** What this gateway has seen from its peers (replay protection across restarts). */
  peers: z.record(
    z.string(),
    EpochSeen.extend({
      older: z.array(EpochSeen).max(MAX_OLDER_EPOCHS).optional(),
      epochFloor: z.number().int().optional(),
    }),
  ),
});
export type CommsState = z.infer<typeof StateSchema>;

/**
 * The comms state that must survive a restart or a power cut, in one file written atomically:
 * this gateway's epoch and, per peer, the epoch and highest sequence numbers seen.
 *
 * The epoch is taken at start as max(last epoch + 1, Unix seconds) and written before the first
 * message goes out, so `(sender, epoch, seq)` never repeats even when the clock steps back or the
 * counters are lost; the sequence numbers then start again from 1 and need no write per message.
 */
export class CommsStateFile {
  constructor(readonly file: string) {}

  load(): CommsState | undefined {
    const raw = readJsonIfPresent(this.file);
    if (raw === undefined) return undefined;
    const parsed = StateSchema.safeParse(raw);
    if (!parsed.success) {
      throw new P2PError(ErrorCode.storage, `${this.file}: not a comms state file`, {
        component: 'comms',
        file: this.file,
        hint: 'move the file away; the gateway then starts a new epoch and forgets what it saw from peers',
      });
    }
    return parsed.data;
  }

  /** Starts a new epoch and writes it; returns the epoch and the replay state of the last run. */
  begin(nowMs: number): { epoch: number; peers: ReplaySnapshot } {
    const last = this.load();
    const epoch = Math.max((last?.epoch ?? 0) + 1, Math.floor(nowMs / 1000));
    const peers = last?.peers ?? {};
    this.save(epoch, peers);
    return { epoch, peers };
  }

  save(epoch: number, peers: ReplaySnapshot): void {
    writeFileAtomic(this.file, `${JSON.stringify({ v: 1, epoch, peers } satisfies CommsState)}\n`);
  }
}
