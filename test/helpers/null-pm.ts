import type { AppSpec, AppInfo, ProcessManager } from '../../lib/process-manager';

/** A ProcessManager that does nothing: tests extend it with the one behavior they need. */
export class NullProcessManager implements ProcessManager {
  async start(_app: AppSpec): Promise<void> {}
  async restart(): Promise<void> {}
  async startEcosystem(): Promise<void> {}
  async stop(): Promise<void> {}
  async delete(): Promise<void> {}
  async list(): Promise<AppInfo[]> {
    return [];
  }
  close(): void {}
}
