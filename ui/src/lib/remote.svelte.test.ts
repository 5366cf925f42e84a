import { expect, test } from 'vitest';

import { Remote } from './remote.svelte';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('loading, then ready with the value', async () => {
  const answer = deferred<number>();
  const remote = new Remote(() => answer.promise);
  expect(remote.state).toEqual({ status: 'loading' });
  answer.resolve(42);
  await answer.promise;
  await Promise.resolve();
  expect(remote.state).toEqual({ status: 'ready', value: 42 });
});

test('a failure keeps the ControlError; anything else becomes one', async () => {
  const failing = new Remote(() => Promise.reject({ code: 'unreachable', message: 'gone' }));
  await failing.reload();
  expect(failing.state).toEqual({ status: 'failed', error: { code: 'unreachable', message: 'gone' } });

  const throwing = new Remote(() => Promise.reject(new Error('boom')));
  await throwing.reload();
  expect(throwing.state).toEqual({ status: 'failed', error: { code: 'internal', message: 'Error: boom' } });
});

test('a slow earlier answer never overwrites a newer one', async () => {
  const answers = [deferred<string>(), deferred<string>()];
  let call = 0;
  const remote = new Remote(() => answers[call++]!.promise);
  const second = remote.reload();

  answers[1]!.resolve('new');
  await second;
  answers[0]!.resolve('old');
  await answers[0]!.promise;
  await Promise.resolve();

  expect(remote.state).toEqual({ status: 'ready', value: 'new' });
});
