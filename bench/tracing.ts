/**
 * `npx tsx bench/tracing.ts [seconds] [rounds]`: the cost of OpenTelemetry tracing, every request
 * sampled and exported (batched OTLP/HTTP to a receiver in this process that accepts and drops),
 * against tracing off, on the memory store. Run `npm run build` first.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compareConfigs } from './policy.js';

const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const { port } = receiver.address() as AddressInfo;
// Every request sampled (the worst case), and one in ten (a usual production setting).
for (const ratio of [1, 0.1]) {
  await compareConfigs({
    off: 'tracing off',
    on: `tracing on (sampleRatio ${ratio})`,
    extra: { tracing: { otlpEndpoint: `http://127.0.0.1:${port}/v1/traces`, sampleRatio: ratio } },
    target: 0.85,
    durationSeconds: Number(process.argv[2] ?? 3),
    rounds: Number(process.argv[3] ?? 4),
  });
}
receiver.close();
