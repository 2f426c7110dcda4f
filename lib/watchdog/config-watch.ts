import { watch, type FSWatcher } from 'chokidar';
import { iso } from '../clock';
import { reloadConfig } from '../config/reload';
import type { DaemonContext } from '../daemon-runtime';
import { errorMessage } from '../errors';

// The watchdog's watch on the config file: an edit is a `swarmctl reload`
// (lib/config/reload.ts) once the write has finished, as chokidar's
// awaitWriteFinish judges it: the size has not changed for a moment. An
// editor's save by rename counts as well.

const STABLE_FOR_MS = 300;

export class ConfigWatch {
  private watcher: FSWatcher | null = null;

  start(ctx: DaemonContext): void {
    const file = ctx.config.file;
    this.watcher = watch(file, {
      ignoreInitial: true,
      awaitWriteFinish: { stabilityThreshold: STABLE_FOR_MS, pollInterval: 50 },
    });
    const onEdit = () => this.reload(ctx);
    this.watcher
      .on('change', onEdit)
      .on('add', onEdit)
      .on('error', (err) =>
        ctx.logger.warn({ file, err: errorMessage(err) }, 'config watch failed; swarmctl reload still works'),
      );
  }

  private reload(ctx: DaemonContext): void {
    try {
      const r = reloadConfig({ db: ctx.db, log: ctx.log, file: ctx.config.file, now: false, at: iso(ctx.clock.now()) });
      ctx.logger.info({ file: ctx.config.file, outcome: r.kind, version: r.version }, 'config file changed');
    } catch (err) {
      ctx.logger.error({ file: ctx.config.file, err: errorMessage(err) }, 'config reload failed');
    }
  }

  async stop(): Promise<void> {
    await this.watcher?.close();
    this.watcher = null;
  }
}
