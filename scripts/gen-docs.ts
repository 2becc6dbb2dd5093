/**
 * `npm run docs`: regenerates `proxy.config.example.json`, `mcp-warden.schema.json`, the
 * configuration reference and the error table from the schema and the error catalog (tests fail
 * when any is out of step).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { configJsonSchema, exampleConfig, referenceTable } from '../src/config/reference.js';
import { errorTable } from '../src/errors.js';

writeFileSync('proxy.config.example.json', `${JSON.stringify(exampleConfig(), null, 2)}\n`);
writeFileSync('mcp-warden.schema.json', `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
function replaceBetween(text: string, name: string, content: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const start = text.indexOf(begin);
  const stop = text.indexOf(end);
  if (start === -1 || stop === -1) throw new Error(`the ${name} markers are missing`);
  return `${text.slice(0, start + begin.length)}\n${content}\n${text.slice(stop)}`;
}

const generate = (file: string, name: string, content: string): void => writeFileSync(file, replaceBetween(readFileSync(file, 'utf8'), name, content));
generate('docs/configuration.md', 'config-reference', referenceTable());
generate('docs/troubleshooting.md', 'error-table', errorTable());
console.log('wrote proxy.config.example.json, mcp-warden.schema.json, the configuration reference (docs/configuration.md) and the error table (docs/troubleshooting.md)');
