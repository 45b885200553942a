// Regenerates src/security/seccomp-default.json, berth's default seccomp profile, from Docker's default profile
// (moby profiles/seccomp/default.json): narrowed to amd64 with every minKernel condition taken as met, capability
// conditions kept for per-container resolution. The conversion itself lives in src/security/seccomp.ts.
//
//   node --import tsx scripts/gen-seccomp.mjs [path/to/moby/default.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { fromDockerProfile } from '../src/security/seccomp.ts';

const input = process.argv[2] ?? '/work/shared/specs/seccomp-moby-default.json';
const output = new URL('../src/security/seccomp-default.json', import.meta.url);

const template = fromDockerProfile(JSON.parse(readFileSync(input, 'utf8')), { arch: 'amd64' });
writeFileSync(output, `${JSON.stringify(template, null, 2)}\n`);
console.log(`wrote ${output.pathname}: ${template.syscalls.length} rules for ${template.architectures?.join(', ')}`);
