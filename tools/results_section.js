// Assembles the README's "Fashion-MNIST, four backbones" section from the
// experiments' report.md and results.json, and copies their curves to docs/.
// Usage: node tools/results_section.js runs/fmnist-resnet56 runs/fmnist-mobilenet ...
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const out = [];
for (const dir of process.argv.slice(2)) {
  const res = path.join(dir, 'results.json');
  if (!fs.existsSync(res)) continue;
  const r = JSON.parse(fs.readFileSync(res, 'utf8'));
  const arch = r.meta.arch;
  const md = fs.readFileSync(path.join(dir, 'report.md'), 'utf8').replace(/^## .*\n/, '');
  for (const f of ['curves', 'hindsight']) fs.copyFileSync(path.join(dir, `${f}.png`), path.join('docs', `fmnist-${arch}-${f}.png`));
  const hiLast = (m) => (r.hi[m] ?? []).slice(-5).map((h) => h.toFixed(0)).join(', ');
  const diff = (i) => (r.budgets.paper.ztw[i] - r.budgets.paper.sdn[i]).toFixed(1);
  out.push(`### ${arch} (${r.seeds.length} seeds, mean ± std)`, '',
    `Recipe: ${r.meta['IC epochs']} IC epochs and ${r.meta['ensemble epochs']} ensemble epochs on ${r.meta['train samples']} training images, ${r.meta['test samples']} test images, ${r.meta.minutes} minutes for all seeds.`, '',
    md.trim(), '',
    `ZTW − SDN (paper mode, mean): ${['25%', '50%', '75%', '100%', 'Max'].map((b, i) => `${b} ${diff(i)}`).join(', ')}. ` +
    `HI of the last five heads: SDN ${hiLast('sdn')}%, ZTW ${hiLast('ztw')}%.`, '',
    `![${arch} accuracy vs cost](docs/fmnist-${arch}-curves.png)`, `![${arch} Hindsight Improvability](docs/fmnist-${arch}-hindsight.png)`, '');
}
console.log(out.join('\n'));
