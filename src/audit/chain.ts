import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/**
 * The audit trail's record format, shared by the writer and `audit verify`. Every line is a JSON
 * object carrying `seq` (per replica, from 0), `prev` (the previous line's `hash`) and `hash` (the
 * SHA-256 of the line's canonical JSON without `hash`): editing, removing, reordering or
 * inserting a line breaks the chain at that point. The first line (`start`) publishes the
 * replica's Ed25519 public key; `checkpoint` lines sign the chain head with it.
 */
export type TrailLine =
  | { readonly type: 'start'; readonly jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string }; readonly kid: string }
  | { readonly type: 'record' } & Record<string, unknown>
  | { readonly type: 'checkpoint'; readonly kid: string; readonly sig: string; readonly reason: 'count' | 'interval' | 'stop' };

export interface Chained {
  readonly v: 1;
  readonly seq: number;
  readonly time: string;
  readonly replica: string;
  readonly prev: string;
  readonly hash: string;
  readonly type: string;
  readonly [field: string]: unknown;
}

/** JSON with object keys sorted, so a line hashes the same however it was serialised. */
// Loops that append to one string, not map/join with a template per key: every audited request
// serialises a record and its arguments, and this was the trail's largest cost.
export function canonical(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonical(value[i]);
    return `${out}]`;
  }
  const keys = Object.keys(value).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`;
  }
  return `${out}}`;
}

export function lineHash(line: Record<string, unknown>): string {
  const { hash: _hash, ...rest } = line;
  return createHash('sha256').update(canonical(rest)).digest('base64url');
}

/** What a checkpoint signs: the replica, the position and the chain head. */
export function checkpointMessage(replica: string, seq: number, prev: string): Buffer {
  return Buffer.from(`mcp-warden-audit\n${replica}\n${seq}\n${prev}`);
}

export function publicKeyOf(jwk: { kty: string; crv: string; x: string }): KeyObject {
  return createPublicKey({ key: jwk, format: 'jwk' });
}

export function verifyCheckpoint(key: KeyObject, replica: string, seq: number, prev: string, sig: string): boolean {
  try {
    return verifySignature(null, checkpointMessage(replica, seq, prev), key, Buffer.from(sig, 'base64url'));
  } catch {
    return false;
  }
}
