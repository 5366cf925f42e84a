import { render } from '@testing-library/svelte';
import { expect, test } from 'vitest';

import ValueText from './ValueText.svelte';

test('a value shows rounded, with every digit on hover; text and whole numbers as they are', () => {
  const { container, unmount } = render(ValueText, { value: 16.940710545286407 });
  const shown = container.querySelector('.value-text')!;
  expect(shown.textContent).toBe('16.9407');
  expect(shown.getAttribute('title')).toBe('16.940710545286407');
  unmount();
  // A write's old and new values arrive as text.
  const written = render(ValueText, { value: '21.123456789' });
  expect(written.container.querySelector('.value-text')!.textContent).toBe('21.1235');
  written.unmount();
  const whole = render(ValueText, { value: 42 });
  expect(whole.container.querySelector('.value-text')!.getAttribute('title')).toBeNull();
  whole.unmount();
  expect(render(ValueText, { value: 'open' }).container.textContent).toBe('open');
});
