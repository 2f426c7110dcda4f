import { z } from 'zod';
import { ConfigSchema } from './schema';

// docs/swarm.config.schema.json is generated from the zod schema, so the two
// cannot drift; a test compares the committed file with this output.

export function configJsonSchemaObject(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'Swarm config', $id: 'swarm.config.schema.json' };
}

export function configJsonSchema(): string {
  return `${JSON.stringify(configJsonSchemaObject(), null, 2)}\n`;
}
