import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/core/group-commit.js';

describe('group commit', () => {
  it('writes what arrives in one turn together and answers each item with its own result', async () => {
    const groups: number[][] = [];
    const writer = new GroupCommit((items: number[]) => {
      groups.push(items);
      return items.map((n) => n * 10);
    });
    const first = [writer.add(1), writer.add(2), writer.add(3)];
    expect(groups).toEqual([]); // nothing written before the turn ends
    expect(await Promise.all(first)).toEqual([10, 20, 30]);
    expect(await writer.add(4)).toBe(40);
    expect(groups).toEqual([[1, 2, 3], [4]]);
  });

  it('rejects every item of a group whose write failed, and writes the next group again', async () => {
    let full = true;
    const writer = new GroupCommit((items: string[]) => {
      if (full) throw new Error('database or disk is full');
      return items.map(() => true);
    });
    const failed = await Promise.allSettled([writer.add('a'), writer.add('b')]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    full = false;
    expect(await writer.add('a')).toBe(true);
  });

  it('flush writes at once what waits (before its database closes)', () => {
    const groups: number[][] = [];
    const writer = new GroupCommit(
      (items: number[]) => {
        groups.push(items);
        return items;
      },
      () => undefined, // never deferred: only flush writes
    );
    void writer.add(1);
    void writer.add(2);
    writer.flush();
    expect(groups).toEqual([[1, 2]]);
    writer.flush();
    expect(groups).toHaveLength(1);
  });
});
