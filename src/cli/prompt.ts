/**
 * Docker's confirmation prompt (the prune commands without -f): the message and " [y/N] " on stdout, then one line
 * read from stdin, whether or not it is a terminal. Only "y" or "Y" (surrounding spaces ignored) confirms; any
 * other answer, or the end of input, declines.
 */
export async function confirm(stdin: AsyncIterable<Buffer | string>, stdout: { write(text: string): unknown }, message: string): Promise<boolean> {
  stdout.write(`${message} [y/N] `);
  return (await readLine(stdin)).trim().toLowerCase() === 'y';
}

/** The first line of the input, without its newline ("" at end of input). */
async function readLine(stdin: AsyncIterable<Buffer | string>): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += chunk.toString();
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0]!;
}
