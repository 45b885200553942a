// Reads per-step times out of BuildKit-style plain progress output (docker build --progress plain, and berth's
// renderer, which prints the same lines). Pure.

/**
 * Steps of one build, in order of first appearance: `name` is the first line printed for "#N" (e.g.
 * "[build 4/4] RUN ...", "[internal] load build context"), `seconds` the "#N DONE 1.2s" time, or null for a step
 * reported "#N CACHED" (or never finished).
 * @returns {{name: string, seconds: number | null, cached: boolean}[]}
 */
export function parseSteps(output) {
  const steps = new Map();
  for (const line of output.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line.trimEnd());
    if (!m || m[1] === '0') continue;
    const [, id, rest] = m;
    let s = steps.get(id);
    if (!s) {
      s = { name: rest, seconds: null, cached: false };
      steps.set(id, s);
      continue;
    }
    const done = /^DONE (\d+(?:\.\d+)?)s$/.exec(rest);
    if (done) s.seconds = Number(done[1]);
    else if (rest === 'CACHED') s.cached = true;
  }
  return [...steps.values()];
}

/** Shortens a step name for a table cell: long RUN lines are cut. */
export function shortName(name, max = 60) {
  const one = name.replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max - 3)}...` : one;
}
