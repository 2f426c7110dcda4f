// Writes docs/swarm.config.schema.json from the zod schema: `npm run gen:schema`.
import fs from 'node:fs';
import path from 'node:path';
import { configJsonSchema } from '../lib/config-json-schema';

const out = path.join(__dirname, '..', 'docs', 'swarm.config.schema.json');
fs.writeFileSync(out, configJsonSchema());
process.stdout.write(`wrote ${out}\n`);
