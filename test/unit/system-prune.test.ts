import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { confirm } from '../../src/cli/prompt.js';
import { confirmationMessage, naturalCompare } from '../../src/cli/commands/system-prune.js';
import { NO_FILTER, parsePruneFilter } from '../../src/engine/prune-filter.js';

/** Runs confirm() with `input` written to its stdin (then ended), returning the answer and what it printed. */
async function ask(input: string, end = true): Promise<{ yes: boolean; out: string }> {
  const stdin = new PassThrough();
  let out = '';
  const answer = confirm(stdin, { write: (t: string) => (out += t) }, 'Sure?');
  stdin.write(input);
  if (end) stdin.end();
  return { yes: await answer, out };
}

describe('the confirmation prompt', () => {
  it('asks on stdout and only y or Y confirms', async () => {
    assert.deepEqual(await ask('y\n'), { yes: true, out: 'Sure? [y/N] ' });
    assert.equal((await ask(' Y \n')).yes, true);
    assert.equal((await ask('y')).yes, true, 'a last line without newline');
    for (const no of ['n\n', '\n', 'yes\n', '', 'N\ny\n']) assert.equal((await ask(no)).yes, false, JSON.stringify(no));
  });

  it('answers from the first line without waiting for the end of input', async () => {
    assert.equal((await ask('y\nmore', false)).yes, true);
  });
});

describe('system prune prompt (docker 28 wording, without networks)', () => {
  it('lists what goes for each flag', () => {
    assert.equal(confirmationMessage({ all: false, volumes: false, filter: NO_FILTER }), [
      'WARNING! This will remove:',
      '  - all stopped containers',
      '  - all dangling images',
      '  - unused build cache',
      '',
      'Are you sure you want to continue?',
    ].join('\n'));
    assert.equal(confirmationMessage({ all: true, volumes: true, filter: NO_FILTER }), [
      'WARNING! This will remove:',
      '  - all stopped containers',
      '  - all anonymous volumes not used by at least one container',
      '  - all images without at least one container associated to them',
      '  - all build cache',
      '',
      'Are you sure you want to continue?',
    ].join('\n'));
  });

  it('lists the filters, naturally sorted', () => {
    const filter = parsePruneFilter([['until', '10h'], ['label', 'v10'], ['label', 'v9'], ['label!', 'keep']], new Date());
    assert.equal(confirmationMessage({ all: false, volumes: false, filter }), [
      'WARNING! This will remove:',
      '  - all stopped containers',
      '  - all dangling images',
      '  - unused build cache',
      '',
      '  Items to be pruned will be filtered with:',
      '  - label!=keep',
      '  - label=v9',
      '  - label=v10',
      '  - until=10h',
      '',
      'Are you sure you want to continue?',
    ].join('\n'));
  });

  it('sorts like Go sortorder.NaturalLess (leading zeros break a tie at once)', () => {
    const sorted = ['b', 'a10', 'a9', 'a09', 'a', 'ab', 'a1b', '10', '9', 'a9x', 'a9'].sort(naturalCompare);
    assert.deepEqual(sorted, ['9', '10', 'a', 'a1b', 'a9', 'a9', 'a9x', 'a09', 'a10', 'ab', 'b']);
  });
});
