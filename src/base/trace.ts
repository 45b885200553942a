/** Phase timings for performance work: `BERTH_TRACE=1 berth run ...` prints ms since process start on stderr. */
// Read at call time: module state is frozen into the startup snapshot at build time.
export function trace(label: string): void {
  if (process.env.BERTH_TRACE) process.stderr.write(`[trace ${performance.now().toFixed(1)}ms] ${label}\n`);
}
