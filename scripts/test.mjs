// Runs the test suite with node's test runner: unit tests (pure logic, fast), then integration tests, which drive
// the real berth CLI against runc, overlayfs and cgroups and so run one file at a time.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const which = process.argv[2] ?? 'all';
const files = (dir) => readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `${dir}/${f}`);
const root = new URL('..', import.meta.url).pathname;
process.chdir(root);

const suites = [];
if (which === 'all' || which === 'unit') suites.push(files('test/unit'));
if (which === 'all' || which === 'integration') suites.push(files('test/integration'));
const all = suites.flat();
// The type checker first (strict, no unused locals): a type error fails the suite like a failing test.
const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('typecheck failed');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...all], { stdio: 'inherit' });
process.exit(r.status ?? 1);
