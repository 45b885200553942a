// Generates the layer commit benchmark's input: a tree of many files of varied sizes, like an image layer
// (mostly small files, a few large ones; text and binary), the same bytes on every run.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fillRandom, prng } from './prng.mjs';

const WORDS = ['static', 'const', 'return', 'struct', 'include', 'define', 'if', 'else', 'for', 'while', 'int', 'char',
  'void', 'unsigned', 'size_t', 'buffer', 'length', 'error', 'config', 'module', 'export', 'function', 'value'];

/** A pool of source-like text (compresses about 3-5x with gzip). */
function textPool(rand, bytes) {
  const parts = [];
  let n = 0;
  while (n < bytes) {
    const words = 3 + Math.floor(rand() * 10);
    let line = ' '.repeat(Math.floor(rand() * 4) * 2);
    for (let i = 0; i < words; i++) line += `${WORDS[Math.floor(rand() * WORDS.length)]}${rand() < 0.2 ? Math.floor(rand() * 1000) : ''} `;
    line += '\n';
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** `len` bytes of `pool` from offset `at`, wrapping around. */
function slice(pool, at, len) {
  if (len <= pool.length - at) return pool.subarray(at, at + len);
  const out = Buffer.allocUnsafe(len);
  let o = 0;
  let i = at;
  while (o < len) {
    const n = Math.min(len - o, pool.length - i);
    pool.copy(out, o, i, i + n);
    o += n;
    i = 0;
  }
  return out;
}

/**
 * Writes about `total` bytes of regular-file content under `dir` (created): a fifth in four large binary files,
 * the rest in files of 64 B to 256 KiB (log-uniform sizes), 60% text and 40% binary, 40 to a directory two levels
 * deep, every 7th executable, plus a symlink per 50 files. Returns what it wrote.
 * @returns {{files: number, dirs: number, symlinks: number, bytes: number}}
 */
export function writeTree(dir, total) {
  const rand = prng(0x6c61_7972); // "layr"
  const text = textPool(rand, 1 << 20);
  const binary = fillRandom(Buffer.allocUnsafe(8 << 20), rand);
  const stats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const mkdir = (p) => {
    mkdirSync(p);
    stats.dirs++;
  };
  mkdir(dir);
  const big = Math.floor(total / 5 / 4);
  mkdir(join(dir, 'blobs'));
  for (let i = 0; i < 4 && big > 0; i++) {
    writeFileSync(join(dir, 'blobs', `large-${i}.bin`), slice(binary, Math.floor(rand() * binary.length), big));
    stats.files++;
    stats.bytes += big;
  }
  const lo = Math.log(64);
  const hi = Math.log(256 << 10);
  let i = 0;
  let current = '';
  while (stats.bytes < total) {
    const lib = join(dir, `lib${String(Math.floor(i / 400)).padStart(2, '0')}`);
    if (i % 400 === 0) mkdir(lib);
    if (i % 40 === 0) {
      current = join(lib, `mod${Math.floor(i / 40) % 10}`);
      mkdir(current);
    }
    const size = Math.min(Math.round(Math.exp(lo + rand() * (hi - lo))), total - stats.bytes);
    const isText = rand() < 0.6;
    const pool = isText ? text : binary;
    const name = join(current, `f${String(i).padStart(5, '0')}.${isText ? 'c' : 'o'}`);
    writeFileSync(name, slice(pool, Math.floor(rand() * pool.length), size));
    if (i % 7 === 0) chmodSync(name, 0o755);
    stats.files++;
    stats.bytes += size;
    if (i % 50 === 49) {
      symlinkSync(`f${String(i).padStart(5, '0')}.${isText ? 'c' : 'o'}`, join(current, `link${i}`));
      stats.symlinks++;
    }
    i++;
  }
  return stats;
}
