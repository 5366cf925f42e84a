/**
 * A data source form's values as the inputs hold them (text, or on/off), checked field by field
 * the way the runtime checks them, and turned into the settings a `SourceConfig` carries.
 * Checking here first gives a message at once; the runtime checks again and has the last word.
 */
import type { FieldSchema, FormSchema, SourceConfig } from '../../lib/contract';

/** What an input holds: text for most fields, on/off for a boolean. */
export type FieldValue = string | boolean;
export type FormValues = Record<string, FieldValue>;

/** The runtime refuses longer texts unless a field says otherwise. */
const DEFAULT_MAX_LENGTH = 4096;

/** The values a form starts with: the stored settings when editing, else each field's default. */
export function initialValues(schema: FormSchema, settings: Record<string, unknown> = {}): FormValues {
  const values: FormValues = {};
  for (const field of schema.fields) {
    const given = field.name in settings ? settings[field.name] : field.default;
    values[field.name] = field.type === 'boolean' ? given === true || given === 'true' : asText(given);
  }
  return values;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) {
    return '';
  }
  return typeof value === 'string' ? value : String(value);
}

/**
 * What is wrong with one value, in the runtime's words (`must be a whole number`), or `null`.
 * `keepsSecret`: an empty secret field on edit keeps the stored secret, so it may be empty.
 */
export function fieldProblem(field: FieldSchema, value: FieldValue | undefined, keepsSecret = false): string | null {
  if (field.type === 'boolean') {
    return null;
  }
  const text = typeof value === 'string' ? value : '';
  if (text.trim() === '') {
    if (field.secret && keepsSecret) {
      return null;
    }
    return field.required ? 'is required' : null;
  }
  const c = field.constraints ?? {};
  switch (field.type) {
    case 'text':
    case 'lines':
    case 'path': {
      const limit = c.maxLength ?? DEFAULT_MAX_LENGTH;
      if ([...text].length > limit) {
        return `must be at most ${limit} characters`;
      }
      return field.type === 'path' && !isFullPath(text) ? RELATIVE_PATH : null;
    }
    case 'integer':
      return /^[+-]?\d+$/.test(text.trim()) ? rangeProblem(field, Number(text)) : 'must be a whole number';
    case 'number': {
      const number = Number(text.trim());
      return Number.isFinite(number) ? rangeProblem(field, number) : 'must be a number';
    }
    case 'select':
      return (c.options ?? []).includes(text) ? null : `must be one of ${(c.options ?? []).join(', ')}`;
    case 'duration':
      // Units and spelling are the runtime's to judge; it names what it cannot read.
      return null;
  }
}

/** The runtime's words for a relative path: it runs in a folder of its own. */
export const RELATIVE_PATH =
  'must be a full path from the root, such as /srv/data/plant.csv or C:\\data\\plant.csv: the connector runs in a folder of its own, so a relative path would point somewhere else';

/** A full path on the connector's machine, whichever system it runs: `/…`, `C:\…`, `\\server\…`. */
function isFullPath(text: string): boolean {
  const path = text.trim();
  return path.startsWith('/') || path.startsWith('\\\\') || /^[A-Za-z]:[\\/]/.test(path);
}

function rangeProblem(field: FieldSchema, number: number): string | null {
  const { min, max } = field.constraints ?? {};
  if (min !== undefined && max !== undefined && (number < min || number > max)) {
    return `must be between ${min} and ${max}`;
  }
  if (min !== undefined && max === undefined && number < min) {
    return `must be at least ${min}`;
  }
  if (max !== undefined && min === undefined && number > max) {
    return `must be at most ${max}`;
  }
  return null;
}

/** Every field's problem, by field name; empty when the form may be sent. */
export function formProblems(schema: FormSchema, values: FormValues, keepsSecrets = false): Record<string, string> {
  const problems: Record<string, string> = {};
  for (const field of schema.fields) {
    const problem = fieldProblem(field, values[field.name], keepsSecrets);
    if (problem) {
      problems[field.name] = problem;
    }
  }
  return problems;
}

/**
 * The settings to send: numbers as numbers, on/off as booleans, texts as typed. An empty
 * optional field is left out so the runtime applies its default; an empty secret on edit is
 * sent empty, which keeps the stored one.
 */
export function toSettings(
  schema: FormSchema,
  values: FormValues,
  keepsSecrets = false,
): SourceConfig['settings'] {
  const settings: SourceConfig['settings'] = {};
  for (const field of schema.fields) {
    const value = values[field.name];
    if (field.type === 'boolean') {
      settings[field.name] = value === true;
      continue;
    }
    const text = typeof value === 'string' ? value : '';
    if (text.trim() === '') {
      if (field.secret && keepsSecrets) {
        settings[field.name] = '';
      }
      continue;
    }
    const number = Number(text.trim());
    settings[field.name] =
      (field.type === 'integer' || field.type === 'number') && Number.isFinite(number) ? number : text;
  }
  return settings;
}
