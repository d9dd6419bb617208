import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress, formatDuration, formatFields } from '../../src/util/progress';

function fakeStream(): { stream: NodeJS.WriteStream; text: () => string } {
  let buf = '';
  const stream = { isTTY: false, write: (s: string) => ((buf += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => buf };
}

test('non-TTY progress prints plain lines with fields and a final line', () => {
  const f = fakeStream();
  const p = createProgress({ total: 10, label: 'epoch 1', stream: f.stream, lineIntervalMs: 0 });
  p.update(5, { loss: 0.123456, acc: 91.25 });
  p.stop({ 'img/s': 250 });
  const lines = f.text().trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^epoch 1 \| 5\/10 \(50\.0%\)/);
  assert.match(lines[0], /loss=0\.1235 acc=91\.25/);
  assert.match(lines[1], /img\/s=250/);
  p.stop();
  assert.equal(f.text().trim().split('\n').length, 2, 'stop is idempotent');
});

test('non-TTY progress is quiet between intervals; silent prints nothing', () => {
  const f = fakeStream();
  const p = createProgress({ total: 100, stream: f.stream, lineIntervalMs: 60_000 });
  for (let i = 0; i < 100; i++) p.increment();
  assert.equal(f.text(), '');
  p.stop();
  assert.match(f.text(), /100\/100/);
  const g = fakeStream();
  const s = createProgress({ total: 3, stream: g.stream, silent: true, lineIntervalMs: 0 });
  s.update(1);
  s.stop();
  assert.equal(g.text(), '');
});

test('formatting helpers', () => {
  assert.equal(formatDuration(3725), '1h02m');
  assert.equal(formatDuration(65), '1m05s');
  assert.equal(formatFields({ a: 1, b: 'x', c: undefined, d: 0.00001234 }), 'a=1 b=x d=1.23e-5');
});

test('TTY mode renders a cli-progress bar with fields', () => {
  let buf = '';
  const stream = { isTTY: true, columns: 120, write: (s: string) => ((buf += s), true), on() {}, removeListener() {} } as unknown as NodeJS.WriteStream;
  const p = createProgress({ total: 4, label: 'epoch 2', stream, tty: true });
  for (let i = 0; i < 4; i++) p.increment(1, { loss: 0.25, 'img/s': 250 });
  p.stop();
  assert.match(buf, /epoch 2 \[.*\] 100% 4\/4/);
  assert.match(buf, /loss=0\.25 img\/s=250/);
});
