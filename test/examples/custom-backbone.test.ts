// The README's user-defined backbone, compiled and run: a network written
// outside the project receives early exits through the Backbone protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backbone, keepRows, nn, EarlyExitNetwork, EarlyExitRuntime, randn, tidy } from '../../src';
import type { Tensor, StagedForward, TapInfo } from '../../src';

class TinyNet extends Backbone {
  readonly arch = 'tiny';
  readonly numClasses = 10;
  readonly inputShape = [1, 32, 32];
  readonly taps: TapInfo[] = [{ name: 'block1', shape: [16, 16, 16] }, { name: 'block2', shape: [32, 8, 8] }];
  private c1 = this.registerModule('c1', new nn.Conv2d({ inChannels: 1, outChannels: 16, kernelSize: 3, stride: 2, padding: 1 }));
  private c2 = this.registerModule('c2', new nn.Conv2d({ inChannels: 16, outChannels: 32, kernelSize: 3, stride: 2, padding: 1 }));
  private fc = this.registerModule('fc', new nn.Linear({ inFeatures: 32, outFeatures: 10 }));

  *staged(x: Tensor): StagedForward {
    let h = nn.F.relu(this.c1.forward(x));
    h = keepRows(h, yield h);
    h = nn.F.relu(this.c2.forward(h));
    h = keepRows(h, yield h);
    return this.fc.forward(nn.F.adaptiveAvgPool2d(h, 1).flatten(1));
  }
}

test('a user-defined backbone gets ICs, a cascade and batched early exits', () => {
  const net = new EarlyExitNetwork(new TinyNet(), { cascade: { enabled: true } });
  assert.equal(net.numExits, 3);
  tidy(() => {
    const logits = net.allLogits(randn([4, 1, 32, 32]));
    assert.deepEqual(logits.map((l) => l.shape), [[4, 10], [4, 10], [4, 10]]);
    // The second head reads the first head's logits: 32*4*4 features + 10 cascade inputs.
    assert.equal(net.heads[1].fc.weight.shape[1], 32 * 16 + 10);
    const rt = new EarlyExitRuntime(net, null, { exitCosts: [1, 2, 3], baseCost: 3 });
    const r = rt.run(randn([4, 1, 32, 32]), { kind: 'confidence', tau: 0 });
    assert.deepEqual(Array.from(r.exitIndex), [0, 0, 0, 0]);
  });
});
