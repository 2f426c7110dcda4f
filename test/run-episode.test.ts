import { describe, expect, it } from 'vitest';
import { stepEpisode, type Episode } from '../lib/session/run-episode';

// The run-level checks' state machine, step by step on a clock of our own.

const AFTER = 1000;

function walk(steps: [number | null, number][]): string[] {
  let ep: Episode | null = null;
  return steps.map(([quietSince, now]) => {
    const r = stepEpisode(ep, quietSince, AFTER, now);
    ep = r.next;
    return `${r.output}:${r.next?.state ?? 'none'}`;
  });
}

describe('run episode', () => {
  it('watches, detects after the limit, escalates when it lasts as long again, clears when the condition ends', () => {
    expect(
      walk([
        [0, 0],
        [0, 999],
        [0, 1000],
        [0, 1999],
        [0, 2000],
        [0, 5000],
        [null, 5001],
      ]),
    ).toEqual([
      'none:watching',
      'none:watching',
      'detect:detected',
      'none:detected',
      'escalate:escalated',
      'none:escalated',
      'clear:none',
    ]);
  });

  it('a watch that ends before the limit says nothing', () => {
    expect(
      walk([
        [0, 0],
        [0, 500],
        [null, 600],
        [700, 700],
      ]),
    ).toEqual(['none:watching', 'none:watching', 'none:none', 'none:watching']);
  });

  it('movement after a detection clears it, and a new quiet period starts watching afresh', () => {
    expect(
      walk([
        [0, 0],
        [0, 1000],
        [1500, 1500],
        [1500, 2400],
        [1500, 2500],
      ]),
    ).toEqual(['none:watching', 'detect:detected', 'clear:watching', 'none:watching', 'detect:detected']);
  });

  it('an escalated episode is cleared by movement too', () => {
    expect(
      walk([
        [0, 1000],
        [0, 2000],
        [2100, 2100],
      ]),
    ).toEqual(['detect:detected', 'escalate:escalated', 'clear:watching']);
  });
});
