// A small seeded pseudo-random generator (xorshift128), so generated benchmark inputs are the same bytes every run.

/** Returns rand(): floats in [0, 1) from `seed` (any 32-bit integer). */
export function prng(seed) {
  let x = seed >>> 0 || 1;
  let y = 362436069;
  let z = 521288629;
  let w = 88675123;
  return () => {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return w / 4294967296;
  };
}

/** Fills `buf` with pseudo-random bytes from `rand` (4 bytes per draw). */
export function fillRandom(buf, rand) {
  const words = Math.floor(buf.length / 4);
  const u32 = new Uint32Array(words); // a fresh array: `buf` may not be 4-byte aligned
  for (let i = 0; i < words; i++) u32[i] = rand() * 4294967296;
  buf.set(new Uint8Array(u32.buffer));
  for (let i = words * 4; i < buf.length; i++) buf[i] = rand() * 256;
  return buf;
}
