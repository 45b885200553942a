import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderer } from '../../src/cli/commands/build.js';
import type { CliContext } from '../../src/cli/context.js';

function plain(): { emit: ReturnType<typeof renderer>; text: () => string } {
  let buf = '';
  const ctx = { stderr: { write: (s: string) => ((buf += s), true) } } as unknown as CliContext;
  return { emit: renderer(ctx, 'plain'), text: () => buf };
}

test('plain output keeps the lines of stdout and stderr whole, however their chunks interleave', () => {
  const r = plain();
  r.emit({ type: 'step', id: 3, name: '[a 2/2] RUN x' });
  // A shell trace writes "+ " and the command in two writes; the command's stdout arrives in between.
  r.emit({ type: 'output', id: 3, stream: 'stderr', text: '+ ' });
  r.emit({ type: 'output', id: 3, stream: 'stdout', text: 'hello\nwor' });
  r.emit({ type: 'output', id: 3, stream: 'stderr', text: "echo 'hi'\n" });
  r.emit({ type: 'output', id: 3, stream: 'stdout', text: 'ld' });
  r.emit({ type: 'done', id: 3, ms: 1200 });
  assert.equal(r.text(), "#3 [a 2/2] RUN x\n#3 hello\n#3 + echo 'hi'\n#3 world\n#3 DONE 1.2s\n");
});

test('an unfinished line of each stream is printed when the step fails', () => {
  const r = plain();
  r.emit({ type: 'output', id: 1, stream: 'stdout', text: 'partial out' });
  r.emit({ type: 'output', id: 1, stream: 'stderr', text: 'partial err' });
  r.emit({ type: 'error', id: 1, message: 'boom\nmore' });
  assert.equal(r.text(), '#1 partial out\n#1 partial err\n#1 ERROR: boom\n');
});
