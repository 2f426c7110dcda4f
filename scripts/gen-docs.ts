// Writes docs/swarm.config.schema.json and docs/config.md from the zod
// schema: `npm run gen:docs`. A test fails while either is stale.
import fs from 'node:fs';
import path from 'node:path';
import { configMarkdown } from '../lib/config/docs';
import { configJsonSchema } from '../lib/config/json-schema';

const docs = path.join(__dirname, '..', 'docs');
for (const [file, text] of [
  ['swarm.config.schema.json', configJsonSchema()],
  ['config.md', configMarkdown()],
] as const) {
  fs.writeFileSync(path.join(docs, file), text);
  process.stdout.write(`wrote docs/${file}\n`);
}
