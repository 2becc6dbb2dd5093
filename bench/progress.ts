/** Progress lines on stderr, so stdout carries only the final Markdown report. */
const started = Date.now();

export function say(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${seconds}s] ${message}\n`);
}
