/**
 * `npm run docs`: regenerates `proxy.config.example.json` and the README's configuration
 * reference from the schema (tests fail when either is out of step).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { exampleConfig, referenceTable } from '../src/config/reference.js';

writeFileSync('proxy.config.example.json', `${JSON.stringify(exampleConfig(), null, 2)}\n`);
const readme = readFileSync('README.md', 'utf8');
const begin = '<!-- config-reference:begin -->';
const end = '<!-- config-reference:end -->';
const start = readme.indexOf(begin);
const stop = readme.indexOf(end);
if (start === -1 || stop === -1) throw new Error('README.md lacks the config-reference markers');
writeFileSync('README.md', `${readme.slice(0, start + begin.length)}\n${referenceTable()}\n${readme.slice(stop)}`);
console.log('wrote proxy.config.example.json and the README configuration reference');
