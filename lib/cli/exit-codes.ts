// swarmctl's exit codes, as docs/cli.md gives them: 1 is an answer that is bad, 2 a wrong question.
export const EXIT = { done: 0, bad: 1, usage: 2 } as const;
