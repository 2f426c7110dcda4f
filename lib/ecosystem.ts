import { ECOSYSTEM } from './config/config';
import { DAEMON_NAMES, type DaemonName } from './event-kinds';

/** The names of the apps ecosystem.config.js starts, loaded as PM2 loads it: require() by path. */
export function ecosystemAppNames(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(ECOSYSTEM) as { apps: { name: string }[] }).apps.map((a) => a.name);
}

/** The daemons ecosystem.config.js starts: the ones that exist. */
export function ecosystemDaemons(): DaemonName[] {
  return ecosystemAppNames().filter((n): n is DaemonName => (DAEMON_NAMES as readonly string[]).includes(n));
}
