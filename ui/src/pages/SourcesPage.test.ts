import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { afterEach, expect, test } from 'vitest';

import type { FormSchema } from '../lib/contract';
import { commands, controlStatus, grant, mockControl, pushStatus, resetControl, source } from '../test-support/control';
import SourcesPage from './SourcesPage.svelte';

afterEach(resetControl);

const simulated: FormSchema = {
  kind: 'simulated',
  title: 'Simulated data',
  description: 'Sinusoid, ramp, square, random-walk and noise tags.',
  fields: [
    { name: 'seed', label: 'Seed', type: 'integer', required: true, default: 1, help: 'Same seed, same values.', constraints: { min: 0, max: 9007199254740991 }, secret: false },
    { name: 'sampleInterval', label: 'Sample interval', type: 'duration', required: true, default: '1s', help: 'Time between samples.', secret: false },
    { name: 'tagsPerShape', label: 'Tags per shape', type: 'integer', required: true, default: 1, help: 'How many tags of each shape.', constraints: { min: 1, max: 1000 }, secret: false },
  ],
};

const sqlite: FormSchema = {
  kind: 'sqlite',
  title: 'SQLite table',
  description: 'Rows of a table in an SQLite file.',
  fields: [
    { name: 'path', label: 'Database file', type: 'path', required: true, help: '', secret: false },
    { name: 'mode', label: 'Mode', type: 'select', required: true, default: 'wide', help: '', constraints: { options: ['wide', 'narrow'] }, secret: false },
    { name: 'readOnly', label: 'Read only', type: 'boolean', required: false, default: true, help: '', secret: false },
    { name: 'password', label: 'Password', type: 'text', required: true, help: '', secret: true },
  ],
};

const kinds = () => [simulated, sqlite];

/** The message shown for an input, found through its aria-describedby. */
function messageFor(label: string): string {
  const input = screen.getByLabelText(label, { exact: false });
  const ids = (input.getAttribute('aria-describedby') ?? '').split(' ').filter((id) => id.endsWith('-error'));
  return ids.map((id) => document.getElementById(id)!.textContent).join(' ');
}

async function type(label: string, text: string) {
  const input = screen.getByLabelText(label, { exact: false }) as HTMLInputElement;
  await fireEvent.input(input, { target: { value: text } });
  await fireEvent.blur(input);
}

test('lists each data source with its kind, health, tag count and number of apps', async () => {
  mockControl(
    controlStatus({
      connector: {
        sources: [
          source('line-1', { apps: [grant('app_a', 'Dashboard'), grant('app_b', 'Reports')] }),
          source('historian', {
            kind: 'sqlite',
            tagCount: null,
            health: { state: 'degraded', issueCount: 1, issues: [{ message: 'row 7 has no time' }] },
          }),
        ],
      },
    }),
    { source_kinds: kinds },
  );
  render(SourcesPage);
  const list = await screen.findByRole('list', { name: 'Data sources' });
  const [first, second] = within(list).getAllByRole('listitem');
  expect(within(first!).getByRole('heading').textContent).toBe('line-1');
  expect(first!.textContent).toContain('Simulated data');
  expect(first!.textContent).toContain('Healthy');
  expect(first!.textContent).toContain('2 apps');
  expect(first!.textContent).toContain('12 tags');
  expect(second!.textContent).not.toContain('tags');
  expect(second!.textContent).toContain('SQLite table');
  expect(second!.textContent).toContain('Degraded');
  expect(second!.textContent).toContain('Row 7 has no time.');
  expect(second!.textContent).toContain('No apps');
});

test('a source recording to the edge historian shows its tags, disk used and oldest value', async () => {
  mockControl(
    controlStatus({
      connector: {
        sources: [
          source('plc', {
            kind: 'modbus',
            recording: {
              tags: ['TI100', 'FI200', 'PI300'],
              since: '2026-11-01T00:00:00Z',
              oldest: '2026-11-06T12:00:00Z',
              diskBytes: 48_300_000,
              recorded: 1_000,
              lastError: null,
            },
          }),
          source('line-1'),
        ],
      },
    }),
    { source_kinds: kinds },
  );
  render(SourcesPage);
  const list = await screen.findByRole('list', { name: 'Data sources' });
  const [recording, plain] = within(list).getAllByRole('listitem');
  expect(recording!.textContent).toContain('Recording 3 tags · 48 MB · oldest 2026-11-06');
  expect(plain!.textContent).not.toContain('Recording');
});

test('the Add form is drawn from the kind’s schema, with defaults, and follows a change of kind', async () => {
  mockControl(controlStatus(), { source_kinds: kinds });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Add data source' }));

  const form = screen.getByRole('form', { name: 'Add a data source' });
  expect((within(form).getByLabelText('Kind') as HTMLSelectElement).value).toBe('simulated');
  expect((within(form).getByLabelText('Seed') as HTMLInputElement).value).toBe('1');
  expect((within(form).getByLabelText('Sample interval') as HTMLInputElement).value).toBe('1s');
  expect(within(form).getByText('How many tags of each shape.')).toBeTruthy();
  expect(within(form).queryByLabelText('Database file')).toBeNull();

  const kind = within(form).getByLabelText('Kind') as HTMLSelectElement;
  kind.value = 'sqlite';
  await fireEvent.change(kind);
  expect(within(form).queryByLabelText('Seed')).toBeNull();
  expect(within(form).getByLabelText('Database file', { exact: false }).getAttribute('type')).toBe('text');
  expect((within(form).getByLabelText('Mode') as HTMLSelectElement).value).toBe('wide');
  expect((within(form).getByLabelText('Read only') as HTMLInputElement).checked).toBe(true);
  expect(within(form).getByLabelText('Password').getAttribute('type')).toBe('password');
});

test('a field’s help shows names between backticks as code', async () => {
  const opcua: FormSchema = {
    kind: 'opcua',
    title: 'OPC UA server',
    description: 'Variables of an OPC UA server.',
    fields: [
      { name: 'trustedThumbprint', label: 'Trusted server certificate', type: 'text', required: false, help: 'Enter it here or run `uplink sources trust NAME`.', secret: false },
    ],
  };
  mockControl(controlStatus(), { source_kinds: () => [opcua] });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Add data source' }));
  const input = within(screen.getByRole('form', { name: 'Add a data source' })).getByLabelText('Trusted server certificate', { exact: false });
  const help = document.getElementById(input.getAttribute('aria-describedby')!)!;
  expect(help.textContent).toBe('Enter it here or run uplink sources trust NAME.');
  expect(help.querySelector('code')?.textContent).toBe('uplink sources trust NAME');
});

test('bad values are named beside their field before anything is sent', async () => {
  const calls = mockControl(controlStatus(), { source_kinds: kinds, add_source: () => null });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Add data source' }));

  await type('Tags per shape', '5000');
  expect(messageFor('Tags per shape')).toBe('Tags per shape must be between 1 and 1000.');
  expect(screen.getByLabelText('Tags per shape').getAttribute('aria-invalid')).toBe('true');
  await type('Seed', 'seven');
  expect(messageFor('Seed')).toBe('Seed must be a whole number.');

  await fireEvent.submit(screen.getByRole('form', { name: 'Add a data source' }));
  expect(messageFor('Name')).toBe('Name is required.');
  expect(document.activeElement).toBe(screen.getByLabelText('Name'));
  expect(commands(calls).filter((c) => c.command === 'add_source')).toEqual([]);

  await type('Tags per shape', '4');
  expect(messageFor('Tags per shape')).toBe('');
  expect(screen.getByLabelText('Tags per shape').getAttribute('aria-invalid')).toBeNull();
});

test('the runtime’s field errors show beside their fields; a good form is sent typed and closes', async () => {
  let refuse = true;
  const calls = mockControl(controlStatus(), {
    source_kinds: kinds,
    add_source: () => {
      if (refuse) {
        refuse = false;
        throw {
          code: 'invalid_form',
          message: 'the settings are not valid',
          fields: [
            { field: 'sampleInterval', message: "unknown unit 'x' in '1x'" },
            { field: 'colour', message: 'is not a field of a simulated data source' },
          ],
        };
      }
      return null;
    },
  });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Add data source' }));
  await type('Name', 'line-9');
  await type('Sample interval', '1x');
  await type('Tags per shape', '3');
  const form = screen.getByRole('form', { name: 'Add a data source' });
  await fireEvent.submit(form);

  expect(await screen.findByText("Sample interval unknown unit 'x' in '1x'.")).toBeTruthy();
  expect(messageFor('Sample interval')).toBe("Sample interval unknown unit 'x' in '1x'.");
  expect(within(form).getByRole('alert').textContent).toContain('colour is not a field of a simulated data source');

  await type('Sample interval', '500ms');
  await fireEvent.submit(form);
  expect(await screen.findByText('Added “line-9”.')).toBeTruthy();
  expect(screen.queryByRole('form')).toBeNull();
  const sent = commands(calls).filter((c) => c.command === 'add_source');
  expect(sent).toHaveLength(2);
  expect(sent[1]!.args).toEqual({
    source: {
      name: 'line-9',
      kind: 'simulated',
      description: '',
      settings: { seed: 1, sampleInterval: '500ms', tagsPerShape: 3 },
    },
  });

  await pushStatus(controlStatus({ connector: { sources: [source('line-9')] } }));
  expect(screen.getByRole('heading', { name: 'line-9' })).toBeTruthy();
});

test('a lines field is a text area: a CSV table keeps its lines, and a bad row is named beside it', async () => {
  const modbus: FormSchema = {
    kind: 'modbus',
    title: 'Modbus TCP device',
    description: 'Registers of a PLC.',
    fields: [
      { name: 'host', label: 'Host', type: 'text', required: true, help: '', secret: false },
      { name: 'registerMap', label: 'Register map', type: 'lines', required: true, help: 'CSV.', constraints: { maxLength: 2097152 }, secret: false },
    ],
  };
  let refuse = true;
  const calls = mockControl(controlStatus(), {
    source_kinds: () => [modbus],
    add_source: () => {
      if (refuse) {
        refuse = false;
        throw {
          code: 'invalid_form',
          message: 'the settings are not valid',
          fields: [{ field: 'registerMap', message: 'line 3 (temp): holding registers 11–11 overlap line 2 (flow)' }],
        };
      }
      return null;
    },
  });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Add data source' }));
  const map = screen.getByLabelText('Register map');
  expect(map.tagName).toBe('TEXTAREA');
  const csv = 'name,table,address,type\nflow,hr,10,f32\ntemp,hr,11,u16\n';
  await type('Name', 'plc');
  await type('Host', '10.0.0.5');
  await type('Register map', csv);
  await fireEvent.submit(screen.getByRole('form', { name: 'Add a data source' }));
  await screen.findByText(/overlap line 2/);
  expect(messageFor('Register map')).toBe('Register map line 3 (temp): holding registers 11–11 overlap line 2 (flow).');
  expect(map.getAttribute('aria-invalid')).toBe('true');
  const sent = commands(calls).filter((c) => c.command === 'add_source');
  expect(sent[0]!.args).toEqual({
    source: { name: 'plc', kind: 'modbus', description: '', settings: { host: '10.0.0.5', registerMap: csv } },
  });
});

test('a name already taken is named at the Name field', async () => {
  mockControl(controlStatus(), {
    source_kinds: kinds,
    add_source: () => {
      // As the runtime refuses it: a form error on the name field.
      throw {
        code: 'invalid_form',
        message: "name: a data source named 'line-1' already exists",
        fields: [{ field: 'name', message: "a data source named 'line-1' already exists" }],
      };
    },
  });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Add data source' }));
  await type('Name', 'line-1');
  await fireEvent.submit(screen.getByRole('form', { name: 'Add a data source' }));
  await screen.findByText(/already exists/);
  expect(messageFor('Name')).toBe("Name a data source named 'line-1' already exists.");
});

test('Test runs the unsaved settings and shows sample values', async () => {
  const calls = mockControl(controlStatus(), {
    source_kinds: kinds,
    test_source: () => ({
      health: { state: 'ok', issueCount: 0 },
      tagCount: 5,
      sample: [
        { tag: 'sinusoid-1', value: 57.1, time: '2026-11-25T10:00:00Z', unit: 'bar' },
        { tag: 'label-1', value: 'running', time: null, unit: null },
      ],
    }),
  });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Add data source' }));
  await type('Name', 'trial');
  await fireEvent.click(screen.getByRole('button', { name: 'Test' }));

  const result = await screen.findByRole('region', { name: 'Test result' });
  expect(result.textContent).toContain('Healthy');
  expect(result.textContent).toContain('5 tags');
  const rows = within(result).getAllByRole('row');
  expect(rows[1]!.textContent).toContain('sinusoid-1');
  expect(rows[1]!.textContent).toContain('57.1 bar');
  expect(rows[2]!.textContent).toContain('running');
  expect(commands(calls).find((c) => c.command === 'test_source')!.args).toMatchObject({
    source: { name: 'trial', kind: 'simulated' },
  });
});

test('Remove asks first: Cancel keeps the source, Remove removes it', async () => {
  const calls = mockControl(
    controlStatus({ connector: { sources: [source('line-1', { apps: [grant('app_a', 'Dashboard')] })] } }),
    { source_kinds: kinds, remove_source: () => null },
  );
  render(SourcesPage);
  const removeButton = await screen.findByRole('button', { name: 'Remove line-1' });
  removeButton.focus();
  await fireEvent.click(removeButton);

  let dialog = screen.getByRole('alertdialog', { name: 'Remove “line-1”?' });
  expect(dialog.getAttribute('aria-modal')).toBe('true');
  expect(dialog.textContent).toContain('1 app loses access to it at once');
  expect(document.activeElement).toBe(within(dialog).getByRole('button', { name: 'Cancel' }));
  await fireEvent.keyDown(dialog, { key: 'Escape' });
  expect(screen.queryByRole('alertdialog')).toBeNull();
  expect(commands(calls).filter((c) => c.command === 'remove_source')).toEqual([]);
  // Focus goes back to where it was, and Tab never leaves an open dialog.
  expect(document.activeElement).toBe(removeButton);

  await fireEvent.click(removeButton);
  dialog = screen.getByRole('alertdialog');
  const confirm = within(dialog).getByRole('button', { name: 'Remove' });
  confirm.focus();
  await fireEvent.keyDown(dialog, { key: 'Tab' });
  expect(document.activeElement).toBe(within(dialog).getByRole('button', { name: 'Cancel' }));
  await fireEvent.click(within(dialog).getByRole('button', { name: 'Remove' }));
  expect(await screen.findByText('Removed “line-1”.')).toBeTruthy();
  expect(screen.queryByRole('alertdialog')).toBeNull();
  expect(commands(calls).filter((c) => c.command === 'remove_source')).toEqual([
    { command: 'remove_source', args: { name: 'line-1' } },
  ]);
});

test('Remove names the apps that lose access, once each, and each source links to its page', async () => {
  const apps = [grant('app_a', 'Dashboard'), grant('app_a', 'Dashboard', { userId: 'usr_bob' }), grant('app_r', 'Reports')];
  mockControl(controlStatus({ connector: { sources: [source('line-1', { apps })] } }), { source_kinds: kinds });
  render(SourcesPage);
  const link = await screen.findByRole('link', { name: 'line-1' });
  expect(link.getAttribute('href')).toBe('#/sources/line-1');
  await fireEvent.click(screen.getByRole('button', { name: 'Remove line-1' }));
  const dialog = screen.getByRole('alertdialog', { name: 'Remove “line-1”?' });
  expect(dialog.textContent).toContain('2 apps lose access to it at once:');
  const losing = within(dialog).getByRole('list', { name: 'Apps that lose access' });
  expect(within(losing).getAllByRole('listitem').map((li) => li.textContent)).toEqual(['Dashboard', 'Reports']);
});

test('Test of a saved source renamed in the form names the saved source, so it opens beside the running one', async () => {
  const calls = mockControl(controlStatus({ connector: { sources: [source('plant', { kind: 'sqlite' })] } }), {
    source_kinds: kinds,
    source_settings: () => ({
      name: 'plant',
      kind: 'sqlite',
      description: 'The plant historian',
      settings: { path: '/data/plant.db', mode: 'narrow', readOnly: false, password: '' },
    }),
    test_source: () => ({ health: { state: 'ok', issueCount: 0 }, tagCount: 0, sample: [] }),
  });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Edit plant' }));
  await screen.findByRole('form', { name: 'Edit “plant”' });
  await type('Name', 'plant-2');
  await fireEvent.click(screen.getByRole('button', { name: 'Test' }));
  await screen.findByRole('region', { name: 'Test result' });
  expect(commands(calls).find((c) => c.command === 'test_source')!.args).toMatchObject({
    source: { name: 'plant-2', kind: 'sqlite' },
    saved: 'plant',
  });
});

test('Edit starts from the stored settings, keeps an empty secret, and saves under the old name', async () => {
  const calls = mockControl(controlStatus({ connector: { sources: [source('plant', { kind: 'sqlite' })] } }), {
    source_kinds: kinds,
    source_settings: () => ({
      name: 'plant',
      kind: 'sqlite',
      description: 'The plant historian',
      settings: { path: '/data/plant.db', mode: 'narrow', readOnly: false, password: '' },
    }),
    edit_source: () => null,
  });
  render(SourcesPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Edit plant' }));
  const form = await screen.findByRole('form', { name: 'Edit “plant”' });
  expect((within(form).getByLabelText('Database file', { exact: false }) as HTMLInputElement).value).toBe('/data/plant.db');
  expect((within(form).getByLabelText('Mode') as HTMLSelectElement).value).toBe('narrow');
  expect(within(form).getByLabelText('Password').getAttribute('placeholder')).toContain('Unchanged');
  await type('Name', 'plant-2');
  await fireEvent.submit(form);
  expect(await screen.findByText('Saved “plant-2”.')).toBeTruthy();
  expect(commands(calls).find((c) => c.command === 'edit_source')!.args).toEqual({
    name: 'plant',
    source: {
      name: 'plant-2',
      kind: 'sqlite',
      description: 'The plant historian',
      settings: { path: '/data/plant.db', mode: 'narrow', readOnly: false, password: '' },
    },
  });
});
