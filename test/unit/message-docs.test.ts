import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { catalogueKinds } from '../../src/comms/messages/catalogue.js';

/**
 * The `class` and `type` cells of every table in the sections of docs/architecture.md whose heading
 * names messages ("## Market messages", "## Gossip messages", ...), by section.
 */
function documentedKinds(markdown: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let section: string | undefined;
  let columns: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('## ')) {
      section = /messages/i.test(line) && line !== '## Messages' ? line.slice(3) : undefined;
      columns = undefined;
      if (section) sections.set(section, []);
      continue;
    }
    if (!section || !line.startsWith('|')) {
      columns = undefined;
      continue;
    }
    const cells = line
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim().replace(/^`|`$/g, ''));
    if (!columns) {
      columns = cells;
      continue;
    }
    if (cells.every((c) => /^-+$/.test(c))) continue;
    const cls = cells[columns.indexOf('class')];
    const type = cells[columns.indexOf('type')];
    if (cls && type) sections.get(section)!.push(`${cls}/${type}`);
  }
  return sections;
}

describe('the message tables of docs/architecture.md', () => {
  const documented = documentedKinds(readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8'));
  const catalogue = catalogueKinds();

  it('are read with a class and a type in every row', () => {
    expect([...documented.keys()]).toEqual(expect.arrayContaining(['Market messages (class `mkt`, `dr`)']));
    expect(documented.get('Market messages (class `mkt`, `dr`)')).toContain('mkt/price');
    expect(documented.get('Gossip messages (class `gossip`, QoS 0)')).toContain('gossip/pushsum');
  });

  it('list every message of the catalogue, and none it does not have', () => {
    const listed = [...documented.values()].flat();
    expect(new Set(listed).size, 'a message listed twice').toBe(listed.length);
    expect(
      listed.filter((k) => !catalogue.includes(k)),
      'in the docs, not in the catalogue',
    ).toEqual([]);
    expect(
      catalogue.filter((k) => !listed.includes(k)),
      'in the catalogue, not in the docs',
    ).toEqual([]);
  });

  it('finds a message missing from the docs (the check can fail)', () => {
    const withoutResult = readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => !l.includes('`result`'))
      .join('\n');
    const listed = [...documentedKinds(withoutResult).values()].flat();
    expect(catalogue.filter((k) => !listed.includes(k))).toEqual(['mkt/result']);
  });
});
