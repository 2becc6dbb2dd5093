/**
 * Every process a bench run starts goes through here, so that each exit path (normal end, a
 * thrown error, Ctrl-C, SIGTERM) stops all of them and nothing is left behind.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** Repository root: children run from here so `dist/` and `node_modules/` resolve. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A started child process. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  /** Its stdin, when started with `leash` (otherwise null). */
  readonly stdin: Writable | null;
  /** Resolves with the exit code (null when killed by a signal) once the process is gone. */
  readonly exited: Promise<number | null>;
  /** The last few KB of its stdout and stderr, for error messages. */
  output(): string;
  /** Full stdout, when started with `collectStdout`. */
  stdout(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Keep all of stdout (the load generator's JSON answer), not just a tail. */
  readonly collectStdout?: boolean;
  /**
   * Give the child a stdin pipe: our own children exit when it closes, which also covers this
   * process dying from SIGKILL, where no cleanup code can run; `redis-cli --pipe` reads from it.
   */
  readonly leash?: boolean;
  /** Options for node itself (before the script), e.g. `--cpu-prof`; only for startScript. */
  readonly nodeArgs?: readonly string[];
}

const live = new Set<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];
const TAIL = 8_000;

/** Starts a child process and registers it for cleanup. Throws if it cannot be spawned. */
export function startChild(name: string, command: string, args: readonly string[], options: StartOptions = {}): Child {
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: options.env ?? process.env,
    stdio: [options.leash ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  let all = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-TAIL);
  };
  proc.stdout?.on('data', (chunk: Buffer) => {
    keep(chunk);
    if (options.collectStdout) all += chunk.toString('utf8');
  });
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => {
      live.delete(proc);
      resolve(code);
    });
    proc.once('error', (err) => {
      tail += `\nspawn error: ${err.message}`;
      live.delete(proc);
      resolve(null);
    });
  });
  // After the listeners: a spawn failure arrives as an 'error' event, which must not go unheard.
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const pid = proc.pid;
  live.add(proc);
  const stop = async (graceMs = 3_000): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return { name, pid, stdin: proc.stdin, exited, output: () => tail, stdout: () => all, stop };
}

/** Starts a TypeScript file under bench/ as its own Node process (through tsx). */
export function startScript(name: string, file: string, args: readonly string[], options: StartOptions = {}): Child {
  return startChild(name, process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', `bench/${file}`, ...args], options);
}

/** Runs something else to clean up (a temp dir, a Redis connection) when the run ends. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

let cleaning: Promise<void> | null = null;
let signalled = false;

/** True once a signal or crash started the shutdown: errors from work cut short are expected then. */
export function interrupted(): boolean {
  return signalled;
}

/**
 * Stops every child still running and runs the cleanup callbacks; safe to call more than once.
 * Once done it can run again: a script that measures twice (bench/tracing.ts) starts new
 * children after the first cleanup, and they must be stopped too.
 */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // Cleanup must go on: the next step may be the one that stops a process.
      }
    }
    await Promise.all(
      [...live].map(
        (proc) =>
          new Promise<void>((resolve) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
            const timer = setTimeout(() => proc.kill('SIGKILL'), 3_000);
            proc.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            proc.kill('SIGTERM');
          }),
      ),
    );
  })().finally(() => {
    cleaning = null;
  });
  return cleaning;
}

/**
 * Makes Ctrl-C, SIGTERM, SIGHUP and crashes stop every child before exiting. The `exit` hook is
 * the last net: it can only be synchronous, so it SIGKILLs whatever is still alive.
 */
export function installCleanupHandlers(): void {
  const bail = (code: number) => () => {
    signalled = true;
    process.stderr.write('\nbench: stopping child processes...\n');
    void cleanup().finally(() => process.exit(code));
  };
  process.once('SIGINT', bail(130));
  process.once('SIGTERM', bail(143));
  process.once('SIGHUP', bail(129));
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    bail(1)();
  });
  process.on('exit', () => {
    for (const proc of live) proc.kill('SIGKILL');
  });
}

/** Polls `url` until it answers 200; fails early with the child's output if the child exits. */
export async function waitHealthy(url: string, child: Child, timeoutMs = 15_000): Promise<void> {
  let gone: number | null | undefined;
  void child.exited.then((code) => {
    gone = code;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone !== undefined) throw new Error(`${child.name} exited (code ${gone}) before ${url} answered:\n${child.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${child.name}: ${url} did not answer 200 within ${timeoutMs} ms:\n${child.output()}`);
}
