import { ECOSYSTEM } from './config/config';
import { DAEMON_NAMES, type DaemonName } from './event-kinds';

/** The daemons ecosystem.config.js starts: the ones that exist. */
export function ecosystemDaemons(): DaemonName[] {
  const apps = (require(ECOSYSTEM) as { apps: { name: string }[] }).apps;
  return apps.map((a) => a.name).filter((n): n is DaemonName => (DAEMON_NAMES as readonly string[]).includes(n));
}
