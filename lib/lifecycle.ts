import { IllegalTransitionError } from './errors';

/**
 * A small state machine: a union of states, a table of legal moves, and a
 * hook that logs every transition. Illegal moves throw rather than corrupt.
 */
export class Lifecycle<S extends string> {
  private current: S;
  constructor(
    private readonly machine: string,
    initial: S,
    private readonly allowed: Readonly<Record<S, readonly S[]>>,
    private readonly onTransition: (from: S, to: S, reason: string) => void,
  ) {
    this.current = initial;
  }

  get state(): S {
    return this.current;
  }

  can(to: S): boolean {
    return this.allowed[this.current].includes(to);
  }

  to(next: S, reason: string): void {
    if (!this.can(next)) throw new IllegalTransitionError(this.machine, this.current, next);
    const from = this.current;
    this.current = next;
    this.onTransition(from, next, reason);
  }
}
