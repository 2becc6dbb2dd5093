/** Where and with what a run happened, so numbers are only compared with like numbers. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { ROOT } from './processes.js';

export interface MachineInfo {
  readonly date: string;
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGB: number;
  readonly os: string;
  readonly node: string;
  readonly redis: string;
  readonly autocannon: string;
  readonly httpProxy3: string;
  readonly undici: string;
  /** Commit of the code under test (with `+dirty` when the tree had changes). */
  readonly commit: string;
  /** Open-file limit of this process, which caps the idle-stream count. */
  readonly openFileLimit: string;
  /** 1-minute load average when the run started and ended: other work on the machine shows here. */
  readonly loadAverage: { readonly start: number; readonly end: number };
}

/** Taken when the run starts, for {@link MachineInfo.loadAverage}. */
export const START_LOAD_AVERAGE = os.loadavg()[0] ?? 0;

function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${commit}+dirty` : commit;
  } catch {
    return 'unknown';
  }
}

function openFileLimit(): string {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
    return match ? `${match[1]} (hard ${match[2]})` : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function machineInfo(redisVersion: string): MachineInfo {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 1e9),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: redisVersion,
    autocannon: packageVersion('autocannon'),
    httpProxy3: packageVersion('http-proxy-3'),
    undici: packageVersion('undici'),
    commit: gitCommit(),
    openFileLimit: openFileLimit(),
    loadAverage: { start: START_LOAD_AVERAGE, end: os.loadavg()[0] ?? 0 },
  };
}
