/**
 * `npx tsx bench/tracing.ts [seconds] [rounds]`: the cost of OpenTelemetry tracing, every request
 * sampled and exported (batched OTLP/HTTP to a receiver in this process that accepts and drops),
 * against tracing off, on the memory store. Run `npm run build` first.
 */
import { tracingConfig } from './feature-configs.js';
import { startOtlpSink } from './otlp-sink.js';
import { compareConfigs } from './policy.js';

const receiver = await startOtlpSink();
// Every request sampled (the worst case), and one in ten (a usual production setting).
for (const ratio of [1, 0.1]) {
  await compareConfigs({
    off: 'tracing off',
    on: `tracing on (sampleRatio ${ratio})`,
    extra: tracingConfig(receiver.url, ratio),
    target: 0.85,
    durationSeconds: Number(process.argv[2] ?? 3),
    rounds: Number(process.argv[3] ?? 4),
  });
}
await receiver.close();
