// Starts one app through PM2's own client (lib/pm2-api-manager.ts), in a
// process of its own, so that PM2's module reads this PM2_HOME when it loads:
// node --import tsx pm2-api-start.ts '<AppSpec as JSON>'
import { createLogger } from '../../lib/logger';
import { Pm2ProcessManager } from '../../lib/pm2-api-manager';

const pm = new Pm2ProcessManager(createLogger('pm2-api-start', 'warn'));
pm.start(JSON.parse(process.argv[2] ?? '{}'))
  .then(() => pm.close())
  .catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    pm.close();
    process.exit(1);
  });
