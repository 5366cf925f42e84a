import { expect, test } from 'vitest';

import type { FormSchema } from '../../lib/contract';
import { fieldProblem, formProblems, initialValues, toSettings } from './form-values';

const schema: FormSchema = {
  kind: 'test',
  title: 'Test',
  description: '',
  fields: [
    { name: 'path', label: 'Path', type: 'path', required: true, help: '', secret: false },
    {
      name: 'count',
      label: 'Count',
      type: 'integer',
      required: false,
      default: 10,
      help: '',
      constraints: { min: 1, max: 100 },
      secret: false,
    },
    { name: 'ratio', label: 'Ratio', type: 'number', required: false, help: '', secret: false },
    { name: 'on', label: 'On', type: 'boolean', required: false, default: false, help: '', secret: false },
    {
      name: 'mode',
      label: 'Mode',
      type: 'select',
      required: false,
      default: 'a',
      help: '',
      constraints: { options: ['a', 'b'] },
      secret: false,
    },
    { name: 'password', label: 'Password', type: 'text', required: true, help: '', secret: true },
  ],
};

const field = (name: string) => schema.fields.find((f) => f.name === name)!;

test('a new form starts from the defaults, an edited one from the stored settings', () => {
  expect(initialValues(schema)).toEqual({ path: '', count: '10', ratio: '', on: false, mode: 'a', password: '' });
  expect(initialValues(schema, { path: '/data', count: 5, on: true, password: '' })).toMatchObject({
    path: '/data',
    count: '5',
    on: true,
  });
});

test('each problem is named in the runtime’s own words', () => {
  expect(fieldProblem(field('path'), '')).toBe('is required');
  expect(fieldProblem(field('path'), '  ')).toBe('is required');
  // A relative path is refused with the reason, as the runtime refuses it.
  expect(fieldProblem(field('path'), 'data/plant.csv')).toMatch(/^must be a full path.*relative path would point/);
  expect(fieldProblem(field('path'), '/srv/data/plant.csv')).toBeNull();
  expect(fieldProblem(field('path'), 'C:\\data\\plant.csv')).toBeNull();
  expect(fieldProblem(field('count'), '0')).toBe('must be between 1 and 100');
  expect(fieldProblem(field('count'), '2.5')).toBe('must be a whole number');
  expect(fieldProblem(field('count'), '')).toBeNull(); // optional: the default applies
  expect(fieldProblem(field('ratio'), 'x')).toBe('must be a number');
  expect(fieldProblem(field('ratio'), '-0.5')).toBeNull();
  expect(fieldProblem(field('mode'), 'c')).toBe('must be one of a, b');
  expect(fieldProblem(field('password'), '')).toBe('is required');
  expect(fieldProblem(field('password'), '', true)).toBeNull(); // on edit, empty keeps the stored one
  expect(formProblems(schema, { path: '/x', count: '200', ratio: '', on: true, mode: 'b', password: 'p' })).toEqual({
    count: 'must be between 1 and 100',
  });
});

test('settings carry numbers as numbers, leave empty optional fields out, and keep secrets on edit', () => {
  const values = { path: '/x', count: '7', ratio: '', on: true, mode: 'b', password: '' };
  expect(toSettings(schema, values)).toEqual({ path: '/x', count: 7, on: true, mode: 'b' });
  expect(toSettings(schema, values, true)).toEqual({ path: '/x', count: 7, on: true, mode: 'b', password: '' });
});
