// Rebuilds tap's test class when it does not match the plugins .taprc names; run before every tap
// run (the pretest scripts). tap keeps that class in node_modules/@tapjs/test, so `npm ci` or a tap
// update brings back the default build, which loads test files through ts-node. A tap run that finds
// the build stale does rebuild it, but still starts its test processes with the loaders it had
// already read: that first run would load every file through ts-node and tsx both. When the build
// is current this only reads the config (a fraction of a second).
import { spawnSync } from 'node:child_process';
import { TapConfig } from '@tapjs/config';
import { signature } from '@tapjs/test';

const config = await TapConfig.load();
if (config.pluginSignature !== signature) {
  // `tap` is on the PATH in npm scripts, which are this script's only callers.
  const build = spawnSync('tap', ['build'], { stdio: 'inherit' });
  if (build.error) console.error(`tap build: ${build.error.message}`);
  process.exit(build.status ?? 1);
}
