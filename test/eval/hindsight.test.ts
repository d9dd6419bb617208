import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chanceHindsightImprovability, hindsightImprovability } from '../../src/eval/hindsight';
import { headOutputsFromArrays } from '../../src/eval/types';

/** One-hot-ish outputs with the given answers [head][sample], 3 classes. */
function fromAnswers(answers: number[][]) {
  return headOutputsFromArrays(
    answers.map((head) => head.map((a) => [0, 1, 2].map((c) => (c === a ? 0.8 : 0.1)))),
  );
}

test('HI counts, among a head\'s mistakes, those some earlier head got right', () => {
  const labels = Int32Array.from([0, 0, 0, 0, 0]);
  // Right (0) / wrong (1 or 2) per head:
  //   s0: R W W   s1: W R W   s2: W W W   s3: R R R   s4: W W R
  const answers = [
    [0, 1, 2, 0, 1],
    [1, 0, 1, 0, 2],
    [2, 1, 1, 0, 0],
  ];
  const hi = hindsightImprovability(fromAnswers(answers), labels);
  // head 2 wrong on s0, s2, s4; only s0 was right before -> 1/3
  // head 3 wrong on s0, s1, s2; s0 and s1 were right before -> 2/3
  assert.deepEqual(hi, [0, 1 / 3, 2 / 3]);
});

test('a head with no mistakes has HI 0; a head always right before has HI 1', () => {
  const labels = Int32Array.from([0, 1]);
  const hi = hindsightImprovability(
    fromAnswers([
      [0, 1],
      [0, 1],
      [2, 2],
    ]),
    labels,
  );
  assert.deepEqual(hi, [0, 0, 1]);
});

test('chance baseline is 1 - (1 - 1/K)^(m-1)', () => {
  const chance = chanceHindsightImprovability(4, 10);
  const expected = [0, 0.1, 0.19, 0.271];
  chance.forEach((v, m) => assert.ok(Math.abs(v - expected[m]) < 1e-12, `head ${m + 1}: ${v}`));
  assert.deepEqual(chanceHindsightImprovability(3, 2), [0, 0.5, 0.75]);
});
