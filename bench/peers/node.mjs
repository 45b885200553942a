// Reference: what starting Node.js alone costs (berth's CLI pays this on every command).

/** @returns {import('./peer.mjs').Peer} */
export function nodePeer() {
  return {
    name: 'node',
    missing: () => null,
    async setup() {},
    versions: () => ({ node: `${process.version} (${process.execPath})` }),
    cases: () => [{ label: 'node -e 0', peer: 'node', reference: true, argv: () => ({ cmd: process.execPath, args: ['-e', '0'] }) }],
  };
}
