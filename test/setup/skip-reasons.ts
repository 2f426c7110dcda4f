import type { Reporter, TestCase } from 'vitest/node';

// The default reporter counts skipped tests but does not say why. This one
// prints one line for each test skipped with a reason (ctx.skip(cond, reason)),
// so a run that skipped something says what to install.

export default class SkipReasons implements Reporter {
  onTestCaseResult(test: TestCase): void {
    const r = test.result();
    if (r.state === 'skipped' && r.note)
      process.stdout.write(`skipped: ${test.module.relativeModuleId} > ${test.fullName}: ${r.note}\n`);
  }
}
