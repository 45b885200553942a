/** Phase timings for performance work: `BERTH_TRACE=1 berth run ...` prints ms since process start on stderr. */
const enabled = !!process.env.BERTH_TRACE;

export function trace(label: string): void {
  if (enabled) process.stderr.write(`[trace ${performance.now().toFixed(1)}ms] ${label}\n`);
}
