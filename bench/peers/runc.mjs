// The floor: `runc run` on a ready bundle (busybox rootfs dir + `runc spec` config with args ["true"]), no engine.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { must, run, which } from '../lib/host.mjs';
import { firstLine } from './peer.mjs';

/** @returns {import('./peer.mjs').Peer} */
export function runcPeer() {
  const bin = which('runc');
  let state = '';
  let bundle = '';
  let token = '';

  return {
    name: 'runc',
    missing: () => (bin ? null : 'runc not found in PATH'),
    async setup(ctx) {
      const dir = join(ctx.work, 'runc');
      state = join(dir, 'state');
      bundle = join(dir, 'bundle');
      token = ctx.token;
      ctx.cleanup.push('runc state', () => {
        for (const id of run(bin, ['--root', state, 'list', '-q']).stdout.split('\n').filter(Boolean)) {
          run(bin, ['--root', state, 'delete', '-f', id]);
        }
        rmSync(dir, { recursive: true, force: true });
      });
      mkdirSync(join(bundle, 'rootfs'), { recursive: true });
      must('tar', ['-C', join(bundle, 'rootfs'), '-xf', ctx.tarball]);
      must(bin, ['spec', '--bundle', bundle]);
      const cfgPath = join(bundle, 'config.json');
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
      cfg.process.args = ['true'];
      cfg.process.terminal = false;
      writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
    },
    versions: () => ({ runc: `${firstLine(run(bin, ['--version']).stdout)} (${bin})` }),
    cases: () => [
      { label: 'runc run', peer: 'runc', argv: (i) => ({ cmd: bin, args: ['--root', state, 'run', '--bundle', bundle, `${token}-runc-${i}`] }) },
    ],
  };
}
