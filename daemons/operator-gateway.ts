// operator-gateway: owns telling people. The events they asked for (an
// escalation, a degraded run, a finished run) go to their webhooks, once
// each, in order, retried, and recorded as notify.failed when they cannot be.
import { runDaemon } from '../lib/daemon-main';
import { OperatorGateway } from '../lib/gateway/gateway';

runDaemon('operator-gateway', () => new OperatorGateway());
