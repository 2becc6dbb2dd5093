import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { didYouMean } from './suggest.js';
import { forEachField } from './fields.js';
import type { Problem } from './fields.js';
import { schema } from './schema.js';
import type { Config } from './schema.js';
import { deepFreeze, validateConfig } from './validate.js';
import type { ValidationResult } from './validate.js';

/** Where configuration comes from; every layer is optional. */
export interface ConfigSources {
  /** Path of a JSON or YAML config file (`--config`, or `MCP_WARDEN_CONFIG`). */
  readonly file?: string | null;
  /** Environment variables; only `MCP_WARDEN_*` names from the schema are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** CLI flag values by flag name (`port`, `upstream`, ...), as yargs parsed them. */
  readonly flags?: Readonly<Record<string, unknown>>;
}

type Raw = Record<string, unknown>;

/**
 * Loads configuration with precedence flags > `MCP_WARDEN_*` env > JSON file > defaults,
 * validates it, and reads `...File` secrets. Never throws for bad input: every problem is returned.
 */
export async function loadConfig(sources: ConfigSources = {}): Promise<ValidationResult> {
  const env = sources.env ?? {};
  const problems: Problem[] = [];
  const file = sources.file ?? env.MCP_WARDEN_CONFIG ?? null;
  const raw: Raw = file ? await readConfigFile(file, problems) : {};
  unknownVariables(env, problems);
  forEachField(schema, (path, field) => {
    const fromEnv = field.env ? env[field.env] : undefined;
    if (fromEnv !== undefined) setPath(raw, path, field.fromString(fromEnv));
    const fromFlag = field.flag ? sources.flags?.[field.flag] : undefined;
    if (Array.isArray(fromFlag)) setPath(raw, path, fromFlag.map(String));
    else if (fromFlag !== undefined) setPath(raw, path, field.fromString(String(fromFlag)));
  });
  if (problems.length) return { ok: false, problems };
  const result = validateConfig(raw);
  return result.ok ? readSecretFiles(result.config) : result;
}

/** Variables mcp-warden reads outside the schema (the file, the CLI's admin API and doctor). */
export const OTHER_VARIABLES: readonly string[] = ['MCP_WARDEN_CONFIG', 'MCP_WARDEN_ADMIN_URL', 'MCP_WARDEN_DOCTOR_SECRET'];

/** Every `MCP_WARDEN_*` variable mcp-warden reads. */
export function knownVariables(): Set<string> {
  const names = new Set(OTHER_VARIABLES);
  forEachField(schema, (_path, field) => {
    if (field.env) names.add(field.env);
  });
  return names;
}

/** An `MCP_WARDEN_*` variable nothing reads is a typo of one that is (a setting silently not applied): a problem, like an unknown key. */
function unknownVariables(env: Readonly<Record<string, string | undefined>>, problems: Problem[]): void {
  const known = knownVariables();
  for (const name of Object.keys(env)) {
    if (name.startsWith('MCP_WARDEN_') && !known.has(name)) problems.push({ path: `(env) ${name}`, message: `is not a variable mcp-warden reads${didYouMean(name, known)}` });
  }
}

/** A JSON file, or YAML (`.yaml`, `.yml`; YAML 1.2, so `no` and `0440` are what they look like). */
export async function readConfigFile(path: string, problems: Problem[]): Promise<Raw> {
  let textContent: string;
  try {
    textContent = await readFile(path, 'utf8');
  } catch (err) {
    problems.push({ path: '(file)', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
    return {};
  }
  const yaml = /\.ya?ml$/i.test(path);
  let parsed: unknown;
  if (yaml) {
    const doc = parseDocument(textContent, { version: '1.2', uniqueKeys: true });
    const [first] = doc.errors;
    if (first) {
      problems.push({ path: '(file)', message: `${path} is not valid YAML: ${first.message.split('\n')[0] ?? ''}` });
      return {};
    }
    parsed = doc.toJS({ maxAliasCount: 100 });
  } else {
    try {
      parsed = JSON.parse(textContent);
    } catch (err) {
      problems.push({ path: '(file)', message: `${path} is not valid JSON: ${(err as Error).message}` });
      return {};
    }
  }
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Raw;
  problems.push({ path: '(file)', message: `${path} must hold ${yaml ? 'a YAML mapping' : 'a JSON object'}` });
  return {};
}

function setPath(target: Raw, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Raw;
  }
  node[keys[keys.length - 1] ?? ''] = value;
}

async function readSecret(path: string, key: string, problems: Problem[]): Promise<string | null> {
  try {
    // A trailing newline is how editors and `echo` leave files; it is never part of a secret.
    const value = (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
    if (value) return value;
    problems.push({ path: key, message: `${path} is empty` });
  } catch (err) {
    problems.push({ path: key, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
  }
  return null;
}

async function checkReadable(path: string | null, key: string, problems: Problem[]): Promise<void> {
  if (path !== null) await readSecret(path, key, problems);
}

/** Replaces every `...File` secret by the file's content; unreadable files are problems. */
async function readSecretFiles(config: Config): Promise<ValidationResult> {
  const problems: Problem[] = [];
  const tokenSecret = config.tokens.secretFile
    ? await readSecret(config.tokens.secretFile, 'tokens.secretFile', problems)
    : config.tokens.secret;
  if (tokenSecret !== null && Buffer.byteLength(tokenSecret) < 32) problems.push({ path: 'tokens.secretFile', message: 'the secret must be at least 32 bytes' });
  const clients = await Promise.all(
    config.clients.map(async (client, i) => {
      if (!client.secretFile) return client;
      const secret = await readSecret(client.secretFile, `clients[${i}].secretFile`, problems);
      if (secret !== null && Buffer.byteLength(secret) < 16) problems.push({ path: `clients[${i}].secretFile`, message: 'the secret must be at least 16 bytes' });
      return { ...client, secret, secretFile: null };
    }),
  );
  const adminKey = config.admin.keyFile ? await readSecret(config.admin.keyFile, 'admin.keyFile', problems) : config.admin.key;
  if (adminKey !== null && Buffer.byteLength(adminKey) < 32) problems.push({ path: config.admin.keyFile ? 'admin.keyFile' : 'admin.key', message: 'the admin key must be at least 32 bytes' });
  const auditKey = config.audit.keyFile ? await readSecret(config.audit.keyFile, 'audit.keyFile', problems) : config.audit.key;
  if (auditKey !== null && Buffer.byteLength(auditKey) < 32) problems.push({ path: config.audit.keyFile ? 'audit.keyFile' : 'audit.key', message: 'the audit key must be at least 32 bytes' });
  const password = config.store.passwordFile ? await readSecret(config.store.passwordFile, 'store.passwordFile', problems) : config.store.password;
  await checkReadable(config.tls.certFile, 'tls.certFile', problems);
  await checkReadable(config.tls.keyFile, 'tls.keyFile', problems);
  if (problems.length) return { ok: false, problems };
  const tokens = { ...config.tokens, secret: tokenSecret, secretFile: null };
  const store = { ...config.store, password, passwordFile: null };
  const admin = { ...config.admin, key: adminKey, keyFile: null };
  const audit = { ...config.audit, key: auditKey, keyFile: null };
  return { ok: true, config: deepFreeze({ ...config, tokens, clients, store, admin, audit }) };
}
