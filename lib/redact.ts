// Values of variables named like credentials must never reach a log or an event.

const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Removes secret values wherever they appear in free text, such as a log tail. */
export function redactText(text: string, env: Record<string, string | undefined>): string {
  let out = text;
  for (const [k, v] of Object.entries(env)) {
    if (v && v.length >= 4 && isSecretName(k)) out = out.split(v).join('[redacted]');
  }
  return out;
}
