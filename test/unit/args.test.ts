import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  commandPath,
  flagUsages,
  GLOBAL_SPEC,
  helpText,
  parseArgs,
  splitGlobal,
  usageError,
  type CommandSpec,
} from '../../src/cli/args.js';
import { isBerthError } from '../../src/base/errors.js';

const RUN: CommandSpec = {
  name: 'run',
  usage: 'berth run [OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: 'Create and run a new container from an image',
  minArgs: 1,
  interspersed: false,
  flags: [
    { name: 'detach', short: 'd', type: 'bool', description: 'Run container in background and print container ID' },
    { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
    { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
    { name: 'rm', type: 'bool', description: 'Automatically remove the container when it exits' },
    { name: 'env', short: 'e', type: 'strings', description: 'Set environment variables' },
    { name: 'name', type: 'string', description: 'Assign a name to the container' },
    { name: 'hostname', short: 'h', type: 'string', description: 'Container host name' },
    { name: 'memory', short: 'm', type: 'bytes', description: 'Memory limit' },
    { name: 'cpus', type: 'number', description: 'Number of CPUs' },
    { name: 'cpu-shares', short: 'c', type: 'int', description: 'CPU shares (relative weight)' },
    { name: 'health-interval', type: 'duration', description: 'Time between running the check (ms|s|m|h) (default 0s)' },
    { name: 'stop-timeout', type: 'duration', bareSeconds: true, description: 'Timeout to stop a container' },
    { name: 'publish', short: 'p', type: 'strings', description: "Publish a container's port(s) to the host" },
  ],
};

const STOP: CommandSpec = {
  name: 'stop',
  usage: 'berth stop [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Stop one or more running containers',
  minArgs: 1,
  flags: [
    { name: 'signal', short: 's', type: 'string', description: 'Signal to send to the container' },
    { name: 'time', short: 't', type: 'int', description: 'Seconds to wait before killing the container', default: 10 },
  ],
};

const TAG: CommandSpec = {
  name: 'tag',
  usage: 'berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  minArgs: 2,
  maxArgs: 2,
  flags: [],
};

function fails(spec: CommandSpec, argv: string[], message: string): void {
  assert.throws(
    () => parseArgs(spec, argv),
    (e: unknown) => {
      assert.ok(isBerthError(e, 'invalid-argument'), `expected invalid-argument, got ${String(e)}`);
      assert.equal((e as Error).message, message);
      return true;
    },
  );
}

describe('parseArgs: syntax', () => {
  it('parses long flags with separate and attached values', () => {
    const p = parseArgs(RUN, ['--name', 'web', '--memory=512m', 'alpine']);
    assert.equal(p.flags.name, 'web');
    assert.equal(p.flags.memory, 512 * 1024 * 1024);
    assert.deepEqual(p.args, ['alpine']);
  });

  it('parses short flags: -n value, -nvalue, -n=value', () => {
    assert.equal(parseArgs(RUN, ['-m', '1g', 'x']).flags.memory, 1024 ** 3);
    assert.equal(parseArgs(RUN, ['-m1g', 'x']).flags.memory, 1024 ** 3);
    assert.equal(parseArgs(RUN, ['-m=1g', 'x']).flags.memory, 1024 ** 3);
  });

  it('combines bool shorthands, and a value shorthand takes the rest of the group or the next arg', () => {
    let p = parseArgs(RUN, ['-dit', 'alpine']);
    assert.equal(p.flags.detach, true);
    assert.equal(p.flags.interactive, true);
    assert.equal(p.flags.tty, true);
    p = parseArgs(RUN, ['-de', 'FOO=1', 'alpine']);
    assert.equal(p.flags.detach, true);
    assert.deepEqual(p.flags.env, ['FOO=1']);
    p = parseArgs(RUN, ['-deFOO=1', 'alpine']);
    assert.deepEqual(p.flags.env, ['FOO=1']);
    assert.deepEqual(p.args, ['alpine']);
    p = parseArgs(RUN, ['-itp', '80:80', 'alpine']);
    assert.deepEqual(p.flags.publish, ['80:80']);
    p = parseArgs(RUN, ['-d=false', 'alpine']);
    assert.equal(p.flags.detach, false);
  });

  it('collects repeatable flags in order', () => {
    const p = parseArgs(RUN, ['-e', 'A=1', '--env', 'B=2', '-eC=3', '--env=D=4', 'alpine']);
    assert.deepEqual(p.flags.env, ['A=1', 'B=2', 'C=3', 'D=4']);
  });

  it('accepts explicit booleans like strconv.ParseBool', () => {
    assert.equal(parseArgs(RUN, ['--rm=false', 'x']).flags.rm, false);
    assert.equal(parseArgs(RUN, ['--rm=true', 'x']).flags.rm, true);
    assert.equal(parseArgs(RUN, ['--rm=1', 'x']).flags.rm, true);
    assert.equal(parseArgs(RUN, ['--rm=F', 'x']).flags.rm, false);
    // a bare bool never consumes the next word
    assert.deepEqual(parseArgs(RUN, ['--rm', 'false']).args, ['false']);
  });

  it('takes a value that looks like a flag', () => {
    assert.equal(parseArgs(RUN, ['--name', '-x', 'alpine']).flags.name, '-x');
    assert.equal(parseArgs(RUN, ['--name=', 'alpine']).flags.name, '');
  });

  it('stops at the first positional when not interspersed', () => {
    const p = parseArgs(RUN, ['-d', 'alpine', 'sh', '-c', 'echo hi', '--rm', '--', 'x']);
    assert.equal(p.flags.rm, false);
    assert.deepEqual(p.args, ['alpine', 'sh', '-c', 'echo hi', '--rm', '--', 'x']);
  });

  it('keeps parsing flags after positionals when interspersed, and "--" ends flags', () => {
    let p = parseArgs(STOP, ['web', '-t', '5', 'db']);
    assert.equal(p.flags.time, 5);
    assert.deepEqual(p.args, ['web', 'db']);
    p = parseArgs(STOP, ['--', '-t', 'db']);
    assert.equal(p.flags.time, 10);
    assert.deepEqual(p.args, ['-t', 'db']);
    p = parseArgs(RUN, ['--', 'alpine', '--rm']);
    assert.deepEqual(p.args, ['alpine', '--rm']);
  });

  it('treats "-" and "" as positionals', () => {
    assert.deepEqual(parseArgs(STOP, ['-', '']).args, ['-', '']);
  });

  it('fills defaults and records what was given', () => {
    const p = parseArgs(STOP, ['web']);
    assert.equal(p.flags.time, 10);
    assert.equal(p.flags.signal, undefined);
    assert.deepEqual([...(p.changed ?? [])], []);
    const r = parseArgs(RUN, ['--rm', '-e', 'A=1', 'x']);
    assert.equal(r.flags.detach, false);
    assert.deepEqual(r.flags.publish, []);
    assert.deepEqual([...(r.changed ?? [])].sort(), ['env', 'rm']);
  });

  it('replaces a strings default on first use instead of appending', () => {
    const spec: CommandSpec = { ...TAG, minArgs: 0, maxArgs: undefined, flags: [{ name: 'dns', type: 'strings', default: ['8.8.8.8'], description: 'DNS' }] };
    assert.deepEqual(parseArgs(spec, []).flags.dns, ['8.8.8.8']);
    assert.deepEqual(parseArgs(spec, ['--dns', '1.1.1.1', '--dns', '9.9.9.9']).flags.dns, ['1.1.1.1', '9.9.9.9']);
    // the default array is not shared between parses
    const a = parseArgs(spec, []).flags.dns as string[];
    a.push('x');
    assert.deepEqual(parseArgs(spec, []).flags.dns, ['8.8.8.8']);
  });
});

describe('parseArgs: value types', () => {
  it('parses bytes, numbers, ints and durations', () => {
    const p = parseArgs(RUN, ['-m', '1.5g', '--cpus', '0.5', '-c', '512', '--health-interval', '1m30s', '--stop-timeout', '10', 'x']);
    assert.equal(p.flags.memory, 1.5 * 1024 ** 3);
    assert.equal(p.flags.cpus, 0.5);
    assert.equal(p.flags['cpu-shares'], 512);
    assert.equal(p.flags['health-interval'], 90_000);
    assert.equal(p.flags['stop-timeout'], 10_000);
    assert.equal(parseArgs(RUN, ['--stop-timeout', '500ms', 'x']).flags['stop-timeout'], 500);
    assert.equal(parseArgs(RUN, ['-c', '0x10', 'x']).flags['cpu-shares'], 16);
    assert.equal(parseArgs(RUN, ['-c', '-1', 'x']).flags['cpu-shares'], -1);
    assert.equal(parseArgs(RUN, ['-m', '512MB', 'x']).flags.memory, 512 * 1024 ** 2);
    assert.equal(parseArgs(RUN, ['-m', '1GiB', 'x']).flags.memory, 1024 ** 3);
    assert.equal(parseArgs(RUN, ['-m', '100000', 'x']).flags.memory, 100000);
  });

  it('reports invalid values with pflag wording', () => {
    fails(RUN, ['-m', 'abc', 'x'], `invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'`);
    fails(RUN, ['--memory=1q', 'x'], `invalid argument "1q" for "-m, --memory" flag: invalid suffix: 'q'`);
    fails(STOP, ['-t', 'abc', 'x'], `invalid argument "abc" for "-t, --time" flag: strconv.ParseInt: parsing "abc": invalid syntax`);
    fails(STOP, ['-t', '1.5', 'x'], `invalid argument "1.5" for "-t, --time" flag: strconv.ParseInt: parsing "1.5": invalid syntax`);
    fails(STOP, ['-t', '99999999999999999999', 'x'], `invalid argument "99999999999999999999" for "-t, --time" flag: strconv.ParseInt: parsing "99999999999999999999": value out of range`);
    fails(RUN, ['--cpus', 'lots', 'x'], `invalid argument "lots" for "--cpus" flag: strconv.ParseFloat: parsing "lots": invalid syntax`);
    fails(RUN, ['--rm=maybe', 'x'], `invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax`);
    fails(RUN, ['--health-interval', '10', 'x'], `invalid argument "10" for "--health-interval" flag: time: missing unit in duration "10"`);
    fails(RUN, ['--health-interval', 'soon', 'x'], `invalid argument "soon" for "--health-interval" flag: time: invalid duration "soon"`);
  });
});

describe('parseArgs: errors', () => {
  it('rejects unknown flags', () => {
    fails(RUN, ['--foo', 'x'], 'unknown flag: --foo');
    fails(RUN, ['--foo=bar', 'x'], 'unknown flag: --foo');
    fails(RUN, ['-z', 'x'], "unknown shorthand flag: 'z' in -z");
    fails(RUN, ['-dz', 'x'], "unknown shorthand flag: 'z' in -z");
    fails(RUN, ['-dzq', 'x'], "unknown shorthand flag: 'z' in -zq");
  });

  it('reports missing values', () => {
    fails(RUN, ['--name'], 'flag needs an argument: --name');
    fails(RUN, ['-m'], "flag needs an argument: 'm' in -m");
    fails(RUN, ['-dm'], "flag needs an argument: 'm' in -m");
  });

  it('reports bad flag syntax', () => {
    fails(RUN, ['---x', 'a'], 'bad flag syntax: ---x');
    fails(RUN, ['--=x', 'a'], 'bad flag syntax: --=x');
  });

  it('checks argument counts with docker wording', () => {
    fails(STOP, [], '"berth stop" requires at least 1 argument.');
    fails(TAG, ['a'], '"berth tag" requires exactly 2 arguments.');
    fails(TAG, ['a', 'b', 'c'], '"berth tag" requires exactly 2 arguments.');
    const ps: CommandSpec = { name: 'ps', usage: 'berth ps [OPTIONS]', description: 'List containers', maxArgs: 0, flags: [] };
    fails(ps, ['x'], '"berth ps" accepts no arguments.');
    const commit: CommandSpec = { name: 'commit', usage: 'berth commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]', description: 'Create a new image', minArgs: 1, maxArgs: 2, flags: [] };
    fails(commit, [], '"berth commit" requires at least 1 and at most 2 arguments.');
    fails(commit, ['a', 'b', 'c'], '"berth commit" requires at least 1 and at most 2 arguments.');
    const one: CommandSpec = { name: 'x', usage: 'berth image ls [OPTIONS] [REPOSITORY[:TAG]]', description: 'List images', maxArgs: 1, flags: [] };
    fails(one, ['a', 'b'], '"berth image ls" requires at most 1 argument.');
    assert.deepEqual(parseArgs(one, ['a']).args, ['a']);
    const exact1: CommandSpec = { name: 'export', usage: 'berth export [OPTIONS] CONTAINER', description: 'Export', minArgs: 1, maxArgs: 1, flags: [] };
    fails(exact1, [], '"berth export" requires exactly 1 argument.');
  });
});

describe('parseArgs: help', () => {
  it('recognises --help and -h unless the command uses -h itself', () => {
    assert.equal(parseArgs(STOP, ['--help']).flags.help, true);
    assert.equal(parseArgs(STOP, ['-h']).flags.help, true);
    assert.equal(parseArgs(STOP, ['web']).flags.help, false);
    // run has -h for --hostname
    const p = parseArgs(RUN, ['-h', 'box', 'alpine']);
    assert.equal(p.flags.hostname, 'box');
    assert.equal(p.flags.help, false);
    assert.equal(parseArgs(RUN, ['--help']).flags.help, true);
  });

  it('skips the argument count check when help is asked for', () => {
    assert.deepEqual(parseArgs(TAG, ['--help']).args, []);
  });

  it('leaves --help after the image to the container command', () => {
    const p = parseArgs(RUN, ['alpine', '--help']);
    assert.equal(p.flags.help, false);
    assert.deepEqual(p.args, ['alpine', '--help']);
  });
});

describe('usageError and commandPath', () => {
  it('derives the command path from the use line', () => {
    assert.equal(commandPath(STOP), 'berth stop');
    assert.equal(commandPath({ ...STOP, usage: 'berth image ls [OPTIONS] [REPOSITORY[:TAG]]' }), 'berth image ls');
    assert.equal(commandPath(TAG), 'berth tag');
  });

  it('appends the --help pointer to flag errors', () => {
    assert.equal(usageError(RUN, 'unknown flag: --foo'), "unknown flag: --foo\nSee 'berth run --help'.");
  });

  it('formats argument-count errors like docker, with usage and description', () => {
    assert.equal(
      usageError(STOP, '"berth stop" requires at least 1 argument.'),
      `"berth stop" requires at least 1 argument.\nSee 'berth stop --help'.\n\nUsage:  berth stop [OPTIONS] CONTAINER [CONTAINER...]\n\nStop one or more running containers`,
    );
    assert.equal(
      usageError(TAG, '"berth tag" requires exactly 2 arguments.'),
      `"berth tag" requires exactly 2 arguments.\nSee 'berth tag --help'.\n\nUsage:  berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\nCreate a tag TARGET_IMAGE that refers to SOURCE_IMAGE`,
    );
  });
});

describe('helpText', () => {
  it('renders docker-style help: Usage, description, aligned Options with defaults', () => {
    assert.equal(
      helpText(STOP),
      [
        '',
        'Usage:  berth stop [OPTIONS] CONTAINER [CONTAINER...]',
        '',
        'Stop one or more running containers',
        '',
        'Options:',
        '  -s, --signal string   Signal to send to the container',
        '  -t, --time int        Seconds to wait before killing the container',
        '                        (default 10)',
        '',
      ].join('\n'),
    );
  });

  it('sorts flags, shows type names, hides hidden flags and does not wrap when width is 0', () => {
    const spec: CommandSpec = {
      name: 'x',
      usage: 'berth x [OPTIONS]',
      description: 'Do x',
      aliases: ['berth container x', 'berth x'],
      flags: [
        { name: 'zeta', type: 'bool', description: 'Last' },
        { name: 'alpha', short: 'a', type: 'strings', description: 'Repeatable' },
        { name: 'secret', type: 'string', description: 'Hidden', hidden: true },
        { name: 'log-driver', type: 'string', description: 'Logging driver', default: 'json-file' },
        { name: 'memory', short: 'm', type: 'bytes', description: 'Memory limit' },
        { name: 'cpus', type: 'number', description: 'Number of CPUs' },
        { name: 'interval', type: 'duration', description: 'Interval', default: 30_000 },
        { name: 'pause', type: 'bool', description: 'Pause', default: true },
        { name: 'user', type: 'string', description: 'Run as `name|uid`' },
      ],
    };
    assert.equal(
      helpText(spec, 0),
      [
        '',
        'Usage:  berth x [OPTIONS]',
        '',
        'Do x',
        '',
        'Aliases:',
        '  berth container x, berth x',
        '',
        'Options:',
        '  -a, --alpha list          Repeatable',
        '      --cpus decimal        Number of CPUs',
        '      --interval duration   Interval (default 30s)',
        '      --log-driver string   Logging driver (default "json-file")',
        '  -m, --memory bytes        Memory limit',
        '      --pause               Pause (default true)',
        '      --user name|uid       Run as name|uid',
        '      --zeta                Last',
        '',
      ].join('\n'),
    );
  });

  it('wraps long descriptions like pflag at 79 columns', () => {
    const text = flagUsages([
      { name: 'add-host', type: 'strings', description: 'Add a custom host-to-IP mapping (host:ip)' },
      { name: 'health-start-period', type: 'duration', description: 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)' },
      { name: 'rm', type: 'bool', description: 'Remove' },
    ]);
    const indent = ' '.repeat(39);
    assert.equal(
      text,
      [
        '      --add-host list                  Add a custom host-to-IP mapping',
        `${indent}(host:ip)`,
        '      --health-start-period duration   Start period for the container to',
        `${indent}initialize before starting`,
        `${indent}health-retries countdown`,
        `${indent}(ms|s|m|h) (default 0s)`,
        '      --rm                             Remove',
      ].join('\n'),
    );
    // a short text is never wrapped; width 0 disables wrapping
    assert.equal(flagUsages([{ name: 'add-host', type: 'strings', description: 'Add a custom host-to-IP mapping (host:ip)' }], 0),
      '      --add-host list   Add a custom host-to-IP mapping (host:ip)');
    for (const line of text.split('\n')) assert.ok(line.length <= 79);
  });

  it('omits the Options block when there are no visible flags', () => {
    assert.equal(helpText(TAG), `\nUsage:  berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\nCreate a tag TARGET_IMAGE that refers to SOURCE_IMAGE\n`);
  });
});

describe('splitGlobal', () => {
  const COMMANDS = ['run', 'ps', 'image ls', 'image rm', 'image inspect', 'container prune', 'volume create', 'builder prune', 'system df', 'image'];

  it('parses global flags up to the command', () => {
    const s = splitGlobal(['--root', '/tmp/b', '-D', '--runtime=/usr/bin/crun', 'run', '-it', '--rm', 'alpine'], COMMANDS);
    assert.equal(s.globals.root, '/tmp/b');
    assert.equal(s.globals.debug, true);
    assert.equal(s.globals.runtime, '/usr/bin/crun');
    assert.equal(s.globals['log-level'], 'info');
    assert.equal(s.path, 'run');
    assert.deepEqual(s.rest, ['-it', '--rm', 'alpine']);
    assert.deepEqual(s.command, ['run', '-it', '--rm', 'alpine']);
  });

  it('recognises two-word commands from the table (longest match wins)', () => {
    let s = splitGlobal(['image', 'ls', '-a'], COMMANDS);
    assert.deepEqual(s.command, ['image ls', '-a']);
    assert.equal(s.path, 'image ls');
    s = splitGlobal(['--debug', 'system', 'df', '-v'], COMMANDS);
    assert.deepEqual(s.command, ['system df', '-v']);
    s = splitGlobal(['image', 'frob'], COMMANDS);
    assert.deepEqual(s.command, ['image', 'frob']);
    s = splitGlobal(['container', 'prune', '-f'], COMMANDS);
    assert.deepEqual(s.command, ['container prune', '-f']);
  });

  it('passes unknown commands through and handles no command', () => {
    let s = splitGlobal(['frobnicate', 'x'], COMMANDS);
    assert.equal(s.path, 'frobnicate');
    assert.deepEqual(s.command, ['frobnicate', 'x']);
    s = splitGlobal(['-v']);
    assert.equal(s.globals.version, true);
    assert.deepEqual(s.command, []);
    assert.equal(s.path, '');
    s = splitGlobal(['--help']);
    assert.equal(s.globals.help, true);
    s = splitGlobal(['-h']);
    assert.equal(s.globals.help, true);
  });

  it('leaves flags after the command alone', () => {
    const s = splitGlobal(['ps', '--root', 'x'], COMMANDS);
    assert.equal(s.globals.root, undefined);
    assert.deepEqual(s.rest, ['--root', 'x']);
  });

  it('rejects unknown global flags', () => {
    assert.throws(() => splitGlobal(['--bogus', 'ps'], COMMANDS), /^BerthError: unknown flag: --bogus$/);
    assert.throws(() => splitGlobal(['--root'], COMMANDS), /flag needs an argument: --root/);
    assert.equal(GLOBAL_SPEC.interspersed, false);
  });
});
