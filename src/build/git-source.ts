import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { invalidArgument } from '../base/errors.js';
import { execFile } from '../sys/exec.js';
import { resolveInRoot } from '../storage/rootpath.js';

/**
 * An `ADD` source that is a Git repository, as BuildKit reads one: `https://host/repo.git`, `git@host:repo`,
 * `git://` and `ssh://` URLs, with a `#ref[:subdir]` fragment or a `?ref=&subdir=&keep-git-dir=&checksum=` query.
 */
export interface GitRef {
  /** What `git` fetches from (the URL without fragment and query). */
  remote: string;
  /** Branch, tag or commit; the remote's HEAD when absent. */
  ref?: string;
  /** The directory of the repository that is added (the root when absent). */
  subdir?: string;
  keepGitDir?: boolean;
  /** A commit (or its prefix) the ref must resolve to. */
  checksum?: string;
}

/** The Git reference an ADD source names, or undefined for a plain URL or a local path. */
export function parseGitRef(src: string): GitRef | undefined {
  const scp = /^[\w.-]+@[\w.-]+:/.test(src);
  const scheme = /^(git|ssh|git\+ssh):\/\//.test(src);
  const http = /^https?:\/\//i.test(src);
  if (!scp && !scheme && !http) return undefined;
  let rest = src;
  let fragment: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  let query: URLSearchParams | undefined;
  const q = rest.indexOf('?');
  if (q >= 0 && !scp) {
    query = new URLSearchParams(rest.slice(q + 1));
    rest = rest.slice(0, q);
  }
  // An http(s) URL is a repository when its path ends in .git (BuildKit's rule), or when it asks for a ref by query.
  if (http && !rest.replace(/\/+$/, '').endsWith('.git') && !query?.has('ref') && !query?.has('branch') && !query?.has('tag')) return undefined;
  const out: GitRef = { remote: rest };
  if (fragment !== undefined && fragment !== '') {
    const colon = fragment.indexOf(':');
    const ref = colon < 0 ? fragment : fragment.slice(0, colon);
    const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
    if (ref) out.ref = ref;
    if (subdir) out.subdir = subdir;
  }
  if (query) {
    const ref = query.get('ref') ?? query.get('branch') ?? query.get('tag');
    if (ref) {
      if (out.ref !== undefined && out.ref !== ref) throw invalidArgument(`git source ${src}: ref given twice, differently`);
      out.ref = ref;
    }
    const subdir = query.get('subdir');
    if (subdir) out.subdir = subdir;
    const keep = query.get('keep-git-dir');
    if (keep !== null) out.keepGitDir = keep === '' || keep === 'true' || keep === '1';
    const sum = query.get('checksum') ?? query.get('commit');
    if (sum) out.checksum = sum;
  }
  // Never an option to git (`-u...` would be --upload-pack): remotes and refs starting with "-" are refused.
  if (out.remote.startsWith('-') || out.ref?.startsWith('-')) throw invalidArgument(`git source ${src}: a remote or ref may not start with "-"`);
  if (out.subdir !== undefined) {
    const clean = out.subdir.split('/').filter((p) => p && p !== '.');
    if (clean.includes('..')) throw invalidArgument(`git source ${src}: subdir ${out.subdir} leaves the repository`);
    out.subdir = clean.join('/');
    if (out.subdir === '') delete out.subdir;
  }
  return out;
}

const FULL_SHA = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/;

/** How git reaches a remote: a home of its own (no configuration of the host's), and for ssh remotes an agent. */
export interface GitAccess {
  /** A scratch directory: git's HOME, and ssh's known_hosts. */
  home: string;
  /** The ssh-agent socket for ssh remotes (`--ssh default`). */
  sshAgent?: string;
  signal?: AbortSignal;
}

/**
 * git for remote work: no terminal prompts (ssh in batch mode too), no system or user configuration of the host.
 * ssh accepts a host key it has not seen (nothing to compare it with), as BuildKit does without known_hosts; a
 * GIT_SSH_COMMAND of the user's is taken as it is.
 */
function git(args: string[], o: GitAccess & { cwd?: string }): Promise<{ stdout: string }> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: o.home,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND
      ?? `ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=${join(o.home, 'known_hosts')}`,
    ...(o.sshAgent ? { SSH_AUTH_SOCK: o.sshAgent } : {}),
  };
  return execFile('git', args, { env, ...(o.cwd ? { cwd: o.cwd } : {}), ...(o.signal ? { signal: o.signal } : {}) });
}

/** One line of a git failure, for the step's error. */
function gitFailure(e: unknown): string {
  const m = (e as Error).message ?? String(e);
  const i = m.indexOf('): ');
  return i < 0 ? m : m.slice(i + 3);
}

/**
 * The commit a reference names on its remote (`git ls-remote`): a full commit id is taken as it is; a branch or tag
 * is looked up (an annotated tag gives the commit it points to); no ref means the remote's HEAD.
 */
export async function resolveGitCommit(ref: GitRef, access: GitAccess): Promise<string> {
  if (ref.ref && FULL_SHA.test(ref.ref)) return ref.ref;
  const want = ref.ref ?? 'HEAD';
  let out: string;
  try {
    out = (await git(['ls-remote', ref.remote, want, `${want}^{}`], access)).stdout;
  } catch (e) {
    throw invalidArgument(`failed to read git repository ${ref.remote}: ${gitFailure(e)}`);
  }
  const lines = out.split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]);
  // Preference: a peeled tag (the commit), then the exact name, branches, tags.
  const pick = (name: string) => lines.find(([, n]) => n === name)?.[0];
  const sha = want === 'HEAD'
    ? pick('HEAD')
    : pick(`refs/tags/${want}^{}`) ?? pick(want) ?? pick(`refs/heads/${want}`) ?? pick(`refs/tags/${want}`) ?? pick(`${want}^{}`);
  if (!sha) throw invalidArgument(`git repository ${ref.remote} has no ref ${JSON.stringify(want)}`);
  return sha;
}

/**
 * Checks out `commit` of the repository into `dir` (made here), shallow where the remote allows it; without
 * keepGitDir the .git directory is removed. Returns the directory to add (the subdir, if any) and the commit's time.
 */
export async function checkoutGit(ref: GitRef, commit: string, dir: string, access: GitAccess): Promise<{ root: string; time: Date }> {
  mkdirSync(dir, { recursive: true });
  const o = { ...access, cwd: dir };
  try {
    await git(['init', '-q'], o);
    await git(['remote', 'add', 'origin', ref.remote], o);
    // By commit id where the remote serves it, else the ref itself (a dumb HTTP remote has no shallow fetch).
    const wanted = ref.ref && !FULL_SHA.test(ref.ref) ? ref.ref : commit;
    const attempts = [['fetch', '-q', '--depth', '1', 'origin', commit], ['fetch', '-q', '--depth', '1', 'origin', wanted], ['fetch', '-q', 'origin', wanted], ['fetch', '-q', 'origin']];
    let fetched = false;
    for (const a of attempts) {
      try {
        await git(a, o);
        await git(['cat-file', '-e', `${commit}^{commit}`], o);
        fetched = true;
        break;
      } catch {
        // the next way
      }
    }
    if (!fetched) throw invalidArgument(`failed to fetch commit ${commit} of ${ref.remote}`);
    await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', commit], o);
    if (existsSync(join(dir, '.gitmodules'))) {
      // Submodules are part of the source (BuildKit fetches them): one that cannot be fetched fails the step.
      await git(['submodule', 'update', '--init', '--recursive', '-q'], o);
    }
    const time = new Date(Number((await git(['log', '-1', '--format=%ct', commit], o)).stdout.trim()) * 1000);
    if (!ref.keepGitDir) rmSync(join(dir, '.git'), { recursive: true, force: true });
    // Resolved inside the checkout: a symlink in the repository never leads the subdir out of it.
    return { root: ref.subdir ? resolveInRoot(dir, ref.subdir) : dir, time };
  } catch (e) {
    if (e instanceof Error && 'kind' in e) throw e;
    throw invalidArgument(`failed to check out ${ref.remote}: ${gitFailure(e)}`);
  }
}
