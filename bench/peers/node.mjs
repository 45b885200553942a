// Reference: what starting Node.js alone costs (berth's CLI pays this on every command).

/** @returns {import('./peer.mjs').Peer} */
export function nodePeer() {
  return {
    name: 'node',
    missing: () => null,
    async setup() {},
    versions: () => ({ node: `${process.version} (${process.execPath})` }),
    cases: () => [
      { label: 'node -e 0', peer: 'node', reference: true, argv: () => ({ cmd: process.execPath, args: ['-e', '0'] }) },
      // Node parses NODE_EXTRA_CA_CERTS at start-up; bin/berth moves it aside (berth loads it on first https use).
      ...(process.env.NODE_EXTRA_CA_CERTS ? [{
        label: 'node -e 0, NODE_EXTRA_CA_CERTS unset', peer: 'node', reference: true,
        argv: () => {
          const env = { ...process.env };
          delete env.NODE_EXTRA_CA_CERTS;
          return { cmd: process.execPath, args: ['-e', '0'], env };
        },
      }] : []),
    ],
  };
}
