import type { KeyObject } from 'node:crypto';
import { lineHash, publicKeyOf, verifyCheckpoint } from './chain.js';

/**
 * `mcp-warden audit verify`: checks an audit trail end to end, one chain per replica. Reports
 * every problem in order (the first is where trust ends): a line that is not JSON, an edited line
 * (its hash), a missing, reordered or inserted line (the chain's `seq` and `prev`), a checkpoint
 * whose signature fails, and a tail after the last checkpoint (it could have been cut short
 * without a trace) unless the trail ends with the checkpoint of a clean stop.
 */
export interface TrailProblem {
  /** 1-based line of the input. */
  readonly line: number;
  readonly replica: string | null;
  readonly seq: number | null;
  readonly problem: string;
}

export interface TrailReport {
  readonly ok: boolean;
  readonly records: number;
  readonly checkpoints: number;
  readonly replicas: readonly string[];
  readonly problems: readonly TrailProblem[];
  /** Records after the last checkpoint, per replica (not covered by a signature). */
  readonly unsignedTail: Readonly<Record<string, number>>;
}

interface ChainState {
  seq: number;
  prev: string;
  key: KeyObject | null;
  tail: number;
  stopped: boolean;
  lastLine: number;
}

/** `keys`: trusted public keys by kid (from the operator); without them the trail's own `start` keys are used. */
export function verifyTrail(lines: readonly string[], keys: ReadonlyMap<string, KeyObject> = new Map()): TrailReport {
  const problems: TrailProblem[] = [];
  const chains = new Map<string, ChainState>();
  let records = 0;
  let checkpoints = 0;
  lines.forEach((text, index) => {
    const n = index + 1;
    if (text.trim() === '') return;
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      problems.push({ line: n, replica: null, seq: null, problem: 'not JSON (a damaged or foreign line)' });
      return;
    }
    const replica = typeof line.replica === 'string' ? line.replica : null;
    const seq = typeof line.seq === 'number' ? line.seq : null;
    const report = (problem: string): void => void problems.push({ line: n, replica, seq, problem });
    if (replica === null || seq === null || typeof line.prev !== 'string' || typeof line.hash !== 'string') return report('not an audit line (replica, seq, prev or hash missing)');
    if (lineHash(line) !== line.hash) report('edited: the line does not match its hash');
    let chain = chains.get(replica);
    if (!chain) {
      chain = { seq: -1, prev: '', key: null, tail: 0, stopped: false, lastLine: n };
      chains.set(replica, chain);
      if (line.type !== 'start' && seq !== 0) report(`the trail of ${replica} does not begin with its start line (first seq ${seq}): earlier lines are missing`);
    }
    if (seq === chain.seq + 1 && chain.seq >= 0 && line.prev !== chain.prev) report('broken link: prev is not the previous line\'s hash (a line was inserted, replaced or edited before this one)');
    else if (seq > chain.seq + 1 && chain.seq >= 0) report(`missing: seq ${chain.seq + 1}${seq - 1 > chain.seq + 1 ? `..${seq - 1}` : ''} not found before this line`);
    else if (seq <= chain.seq) report(`reordered or repeated: seq ${seq} after ${chain.seq}`);
    chain.seq = Math.max(chain.seq, seq);
    chain.prev = line.hash;
    chain.lastLine = n;
    if (line.type === 'start') {
      const jwk = line.jwk as { kty: string; crv: string; x: string } | undefined;
      const kid = String(line.kid ?? '');
      chain.key = keys.get(kid) ?? (keys.size === 0 && jwk ? safeKey(jwk) : null);
      if (!chain.key) report(keys.size > 0 ? `its key ${kid} is not one of the trusted keys` : 'the start line carries no usable key');
      chain.stopped = false;
    } else if (line.type === 'checkpoint') {
      checkpoints++;
      const sig = String(line.sig ?? '');
      if (!chain.key || !verifyCheckpoint(chain.key, replica, seq, line.prev, sig)) report('bad checkpoint signature');
      chain.tail = 0;
      chain.stopped = line.reason === 'stop';
    } else {
      records++;
      chain.tail++;
      chain.stopped = false;
    }
  });
  const unsignedTail: Record<string, number> = {};
  for (const [replica, chain] of chains) {
    if (!chain.stopped) {
      unsignedTail[replica] = chain.tail;
      problems.push({ line: chain.lastLine, replica, seq: chain.seq, problem: `the trail of ${replica} ends without a final checkpoint: ${chain.tail} record(s) since the last checkpoint are not signed, and lines after them may have been cut (a proxy that is still running, or one that was killed, also looks like this)` });
    }
  }
  return { ok: problems.length === 0, records, checkpoints, replicas: [...chains.keys()], problems, unsignedTail };
}

function safeKey(jwk: { kty: string; crv: string; x: string }): KeyObject | null {
  try {
    return publicKeyOf(jwk);
  } catch {
    return null;
  }
}
