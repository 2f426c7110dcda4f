// One run-level condition (no_workers, run_stalled) as a pure state machine,
// so when it detects, escalates and clears can be proven without a clock.
//
// An episode is 'watching' while the condition holds but has not lasted
// `afterMs`; 'detected' once it has (the caller remedies); 'escalated' when
// it still holds `afterMs` after the remedy (the caller raises an
// escalation). It ends ('clear') when the condition stops holding, or when
// its quiet period restarts (something moved, then went quiet again).

export type Episode =
  | { state: 'watching'; quietSince: number }
  | { state: 'detected'; quietSince: number; detectedAt: number }
  | { state: 'escalated'; quietSince: number; detectedAt: number };

/** What the caller does now. 'clear' follows a detection only: a watch that ends says nothing. */
export type EpisodeOutput = 'none' | 'detect' | 'escalate' | 'clear';

/**
 * `quietSince`: since when the condition has held without a break (for a
 * stall, the last progress anywhere), or null when it does not hold now.
 */
export function stepEpisode(
  ep: Episode | null,
  quietSince: number | null,
  afterMs: number,
  now: number,
): { next: Episode | null; output: EpisodeOutput } {
  const detected = ep !== null && ep.state !== 'watching';
  if (quietSince === null) return { next: null, output: detected ? 'clear' : 'none' };
  // Something moved after the detection: that episode is over; a new one starts watching.
  if (detected && quietSince > ep.quietSince) return { next: { state: 'watching', quietSince }, output: 'clear' };
  if (ep === null || ep.state === 'watching') {
    if (now - quietSince >= afterMs)
      return { next: { state: 'detected', quietSince, detectedAt: now }, output: 'detect' };
    return { next: { state: 'watching', quietSince }, output: 'none' };
  }
  if (ep.state === 'detected' && now - ep.detectedAt >= afterMs)
    return { next: { ...ep, state: 'escalated' }, output: 'escalate' };
  return { next: ep, output: 'none' };
}
