import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseModeChange } from '../../src/build/file-mode.js';

// COPY --chmod's modes, octal and symbolic, against GNU chmod(1) on real files and directories as the oracle.

describe('parseModeChange', () => {
  it('sets octal modes as they are, up to 7777, with BuildKit\'s error past it', () => {
    assert.equal(parseModeChange('755')(0o600, false), 0o755);
    assert.equal(parseModeChange('0640')(0o777, true), 0o640);
    assert.equal(parseModeChange('7')(0o600, false), 0o7);
    assert.throws(() => parseModeChange('17777'), /invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777/);
    assert.throws(() => parseModeChange('888'), /it should be octal string/);
    assert.throws(() => parseModeChange('u+q'), /invalid chmod parameter: 'u\+q'/);
    assert.throws(() => parseModeChange('u'), /invalid chmod parameter/);
  });

  it('applies symbolic modes as GNU chmod does, to files and directories', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-mode-'));
    try {
      const specs = ['+x', '+w', '-r', '=rw', 'u=rwX,go=rX', 'a-w', 'go-rwx', 'u+s', 'g+s', 'o+t', 'g=u', 'o=g', 'u=r,g=,o=', 'a=rwx', 'ug+rw,o-r', 'u+x-w', '=r', 'a+X', 'u=rwxs,g=rx'];
      const starts = [0o644, 0o600, 0o755, 0o700, 0o4755, 0o2750, 0o1777, 0o000, 0o610];
      let n = 0;
      for (const spec of specs) {
        const change = parseModeChange(spec);
        for (const start of starts) {
          for (const isDir of [false, true]) {
            const p = join(dir, `e${n++}`);
            if (isDir) mkdirSync(p);
            else writeFileSync(p, '');
            chmodSync(p, start);
            // Under umask 0: GNU chmod masks `+x` and `=r` (no class given) with the umask; BuildKit does not.
            const r = spawnSync('sh', ['-c', 'umask 0; exec chmod "$0" "$1"', spec, p], { encoding: 'utf8' });
            assert.equal(r.status, 0, r.stderr);
            const want = statSync(p).mode & 0o7777;
            assert.equal(change(start, isDir).toString(8), want.toString(8), `chmod ${spec} on ${isDir ? 'dir' : 'file'} ${start.toString(8)}`);
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
