// berth itself: the repo's bin/berth (the esbuild bundle in dist/) on a private --root.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { must, run } from '../lib/host.mjs';
import { firstLine, startSleepers } from './peer.mjs';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin/berth');

/** @returns {import('./peer.mjs').Peer} */
export function berthPeer() {
  let root = '';
  let image = '';
  const berth = (args) => ({ cmd: BIN, args: ['--root', root, ...args] });
  const call = (args) => must(BIN, ['--root', root, ...args]);

  return {
    name: 'berth',
    missing() {
      if (!existsSync(join(REPO, 'dist/berth.mjs'))) return `no ${join(REPO, 'dist/berth.mjs')}: run npm run build`;
      if (!existsSync(join(REPO, 'monitor/berth-monitor'))) return 'no monitor/berth-monitor: run npm run build';
      return null;
    },
    async setup(ctx) {
      root = join(ctx.work, 'berth');
      image = ctx.image;
      ctx.cleanup.push('berth root', () => {
        const ids = run(BIN, ['--root', root, 'ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean);
        if (ids.length) run(BIN, ['--root', root, 'rm', '-f', ...ids]);
        run(BIN, ['--root', root, 'rmi', '-f', image]);
        rmSync(root, { recursive: true, force: true });
      });
      call(['import', ctx.tarball, image]);
    },
    versions() {
      const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
      const launch = existsSync(join(REPO, 'dist/berth.blob')) ? 'V8 startup snapshot dist/berth.blob' : 'ESM bundle dist/berth.mjs';
      return { berth: `${pkg.version} (bin/berth from ${launch}; \`berth --version\`: ${firstLine(run(BIN, ['--version']).stdout)})` };
    },
    cases() {
      return [
        { label: 'berth run', peer: 'berth', argv: () => berth(['run', '--rm', '--network', 'none', image, 'true']) },
        { label: 'berth --version', peer: 'berth', reference: true, argv: () => berth(['--version']) },
      ];
    },
    monitors: {
      name: 'berth-monitor',
      start: (n) => startSleepers(n, () => call(['run', '-d', '--network', 'none', image, 'sleep', '600']), 'berth-monitor', '--id'),
      stop(ids) {
        if (ids.length) run(BIN, ['--root', root, 'rm', '-f', ...ids]);
      },
    },
  };
}
