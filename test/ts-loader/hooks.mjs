// Module hooks that run the tests' TypeScript (register.mjs installs them). Each .ts file is
// transpiled by TypeScript itself, one file at a time (no type checking: `npm test` runs
// `tsc -p tsconfig.json` first), with an inline source map, and the result is kept in a cache
// shared by every test process, keyed by the file's text.
//
// Why not tap's own plugin (ts-node): it transpiles the same ~150 files again in each of ~70 test
// processes, about 2 s of CPU each time. Why not tsx, or esbuild on its own: coverage. tap merges
// the coverage of the test processes (which run src/*.ts through this loader) with that of the
// built CLI they spawn (dist/*.js, emitted by tsc, mapped back to src by tsc's source maps). The
// two agree only when the same compiler wrote both: under esbuild a function run both ways was
// counted twice, one column apart (functions fell from 92% to 78%); tsx also minifies whitespace,
// and V8 coverage is counted per line, so a file that was merely loaded showed 100%.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = new URL('../../', import.meta.url);
const require = createRequire(root);
const cacheDir = fileURLToPath(new URL('node_modules/.cache/mcp-warden-ts/', root));

// A new TypeScript, tsconfig.json or loader makes every cached file stale.
const cacheSeed = createHash('sha256')
  .update(readFileSync(require.resolve('typescript/package.json')))
  .update(readFileSync(new URL('tsconfig.json', root)))
  .update(readFileSync(new URL(import.meta.url)))
  .digest();

/** @type {typeof import('typescript') | undefined} loaded on the first cache miss only */
let ts;
/** @type {import('typescript').CompilerOptions | undefined} */
let compilerOptions;

function transpile(source, filename) {
  const key = createHash('sha256').update(cacheSeed).update(filename).update('\0').update(source).digest('hex');
  const cached = `${cacheDir}${key}.js`;
  try {
    return readFileSync(cached, 'utf8');
  } catch {
    // not cached yet
  }
  ts ??= require('typescript');
  if (!compilerOptions) {
    const tsconfig = fileURLToPath(new URL('tsconfig.json', root));
    const { config, error } = ts.readConfigFile(tsconfig, ts.sys.readFile);
    if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
    compilerOptions = {
      ...ts.convertCompilerOptionsFromJson(config.compilerOptions, fileURLToPath(root)).options,
      // package.json says "type": "module": what tsc emits for NodeNext here is an ES module.
      module: ts.ModuleKind.ESNext,
      noEmit: false,
      declaration: false,
      sourceMap: false,
      inlineSourceMap: true,
    };
  }
  const { outputText } = ts.transpileModule(source, { fileName: filename, compilerOptions });
  // Written aside and renamed into place: the other test processes read whole files or none.
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(partial, outputText);
  renameSync(partial, cached);
  return outputText;
}

const isTypeScript = (url) => url.startsWith('file:') && /\.m?ts$/.test(new URL(url).pathname);

/** NodeNext: a .ts file imports `./x.js`, the name of what tsc will emit; here that is `./x.ts`. */
export async function resolve(specifier, context, nextResolve) {
  const { parentURL } = context;
  if (parentURL && isTypeScript(parentURL) && /^\.{1,2}\/.*\.m?js$/.test(specifier)) {
    const source = new URL(specifier.replace(/js$/, 'ts'), parentURL);
    if (statSync(source, { throwIfNoEntry: false })?.isFile()) return nextResolve(source.href, context);
  }
  return nextResolve(specifier, context);
}

/** Transpiles .ts and .mts files (ES modules, as package.json says); anything else passes on. */
export async function load(url, context, nextLoad) {
  if (!isTypeScript(url)) return nextLoad(url, context);
  // The next loaders read the file (and tap's records which files ran); Node knows no `.ts`, so
  // the format is given here.
  const loaded = await nextLoad(url, { ...context, format: 'module' });
  return { format: 'module', source: transpile(String(loaded.source), fileURLToPath(url)), shortCircuit: true };
}
