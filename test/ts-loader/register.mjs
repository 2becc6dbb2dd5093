// The TypeScript loader of the test runs: `.taprc` passes `--import=./test/ts-loader/register.mjs`
// to every test process. See hooks.mjs for why this and not tap's ts-node plugin or tsx.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
