import { forEachField, isField } from './fields.js';
import type { Field, Group } from './fields.js';
import { schema } from './schema.js';

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
  return exampleGroup(schema);
}

function shown(value: unknown, secret: boolean | undefined): string {
  if (value === undefined) return '(required)';
  if (secret && value !== null) return '`<secret>`';
  return `\`${JSON.stringify(value)}\``;
}

/** The README's configuration reference: one Markdown row per key, generated from the schema. */
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
