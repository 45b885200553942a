// Pure statistics over samples (milliseconds): no I/O, so the numbers in a report can be checked by hand.

/** Sorted copy, ascending. */
function sorted(xs) {
  return [...xs].sort((a, b) => a - b);
}

/** The median: the middle sample, or the mean of the two middle ones. */
export function median(xs) {
  if (!xs.length) return NaN;
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100): the smallest sample with at least p% of samples at or below it. */
export function percentile(xs, p) {
  if (!xs.length) return NaN;
  const s = sorted(xs);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(rank, s.length) - 1];
}

/** Summary of one series of timings. */
export function summarize(xs) {
  return { n: xs.length, median: median(xs), p90: percentile(xs, 90), min: xs.length ? Math.min(...xs) : NaN };
}

/** a / b, or NaN when either side is missing. */
export function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN;
}
