/**
 * `npm run docs`: regenerates `proxy.config.example.json` and the README's configuration
 * reference from the schema (tests fail when either is out of step).
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
  if (start === -1 || stop === -1) throw new Error(`README.md lacks the ${name} markers`);
  return `${text.slice(0, start + begin.length)}\n${content}\n${text.slice(stop)}`;
}

let readme = readFileSync('README.md', 'utf8');
readme = replaceBetween(readme, 'config-reference', referenceTable());
readme = replaceBetween(readme, 'error-table', errorTable());
writeFileSync('README.md', readme);
console.log('wrote proxy.config.example.json, mcp-warden.schema.json, the README configuration reference and error table');
