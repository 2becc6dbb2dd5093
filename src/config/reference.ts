import { forEachField, groupJson, isField } from './fields.js';
import type { Field, Group, JsonSchema } from './fields.js';
import { schema } from './schema.js';
import type { Config } from './schema.js';

function exampleOf(field: Field<unknown>): unknown {
  return field.example !== undefined ? field.example : field.default;
}

function exampleGroup(group: Group): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(group)) out[key] = isField(node) ? exampleOf(node) : exampleGroup(node);
  return out;
}

/** The content of `proxy.config.example.json`: every key of the schema with a sensible value. */
export function exampleConfig(): Record<string, unknown> {
  return { $schema: './mcp-warden.schema.json', ...exampleGroup(schema) };
}

function shown(value: unknown, secret: boolean | undefined): string {
  if (value === undefined) return '(required)';
  if (secret && value !== null) return '`<secret>`';
  return `\`${JSON.stringify(value)}\``;
}

/** The configuration reference (docs/configuration.md): one Markdown row per key, generated from the schema. */
export function referenceTable(): string {
  const rows = ['| key | default | env | flag | meaning |', '|---|---|---|---|---|'];
  forEachField(schema, (path, field) => {
    rows.push(`| \`${path}\` | ${shown(field.default, field.secret)} | ${field.env ? `\`${field.env}\`` : ''} | ${field.flag ? `\`--${field.flag}\`` : ''} | ${field.doc.replace(/\|/g, '\\|')} |`);
    const shape = (field as { shape?: Group }).shape;
    if (shape) {
      forEachField(shape, (sub, subField) => {
        rows.push(`| \`${path}[].${sub}\` | ${shown(subField.default, subField.secret)} | | | ${subField.doc.replace(/\|/g, '\\|')} |`);
      });
    }
  });
  return rows.join('\n');
}

/**
 * `mcp-warden.schema.json`: the configuration file in JSON Schema, for editor completion and
 * checks (`"$schema"` in the file points at it). mcp-warden itself validates with the schema's own
 * parsers, which know more (cross-key rules, secret lengths, CIDRs).
 */
export function configJsonSchema(): JsonSchema {
  const root = groupJson(schema);
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'mcp-warden configuration',
    ...root,
    properties: { $schema: { type: 'string', description: 'Where editors find this schema; mcp-warden ignores it.' }, ...(root.properties as object) },
  };
}

/** A secret's value as `config print` shows it. */
export const REDACTED = '<redacted>';

function redactGroup(group: Group, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(group)) {
    const v = value[key];
    if (!isField(node)) out[key] = redactGroup(node, (v ?? {}) as Record<string, unknown>);
    else if (node.secret && v !== null && v !== undefined) out[key] = REDACTED;
    else {
      const shape = (node as { shape?: Group }).shape;
      out[key] = shape && Array.isArray(v) ? v.map((item) => redactGroup(shape, item as Record<string, unknown>)) : v;
    }
  }
  return out;
}

/**
 * The effective configuration (`mcp-warden config print`): every key with the value in force,
 * secrets (inline or read from their files) shown as `<redacted>`. Durations are milliseconds.
 */
export function redactedConfig(config: Config): Record<string, unknown> {
  const out = redactGroup(schema, config as unknown as Record<string, unknown>);
  // Two places a secret hides inside a value: a Redis URL's password, and upstream headers (API keys).
  const store = out.store as Record<string, unknown>;
  if (typeof store.url === 'string' && URL.canParse(store.url)) {
    const url = new URL(store.url);
    if (url.password) url.password = 'redacted';
    store.url = url.href;
  }
  out.upstreamHeaders = Object.fromEntries(Object.keys(config.upstreamHeaders).map((name) => [name, REDACTED]));
  return out;
}
