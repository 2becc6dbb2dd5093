import t from 'tap';
import { createLogger } from '../../src/observability/logger.js';
import { createSessionEnder } from '../../src/session/end-session.js';
import { validateConfig } from '../../src/config/validate.js';
import { buildEntryStages, buildLegacyStages, buildRefusalHooks, buildRequestStages, buildResponseStages, createUpstreamTransport } from '../../src/pipeline/index.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { UpstreamTransport } from '../../src/pipeline/upstream-transport.js';
import type { StageDeps } from '../../src/pipeline/index.js';
import { watchGeneration } from '../../src/store/generation.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createLimiters } from '../../src/store/limiters.js';
import { createClientRegistry } from '../../src/auth/clients.js';
import { createSessionIds } from '../../src/session/session-id.js';
import { createUpstreamPicker } from '../../src/session/upstreams.js';
import { createRelay } from '../../src/session/relay.js';
import { createStreamGauge } from '../../src/session/streams.js';
import { createFingerprint } from '../../src/session/binding.js';

t.test('the MCP path runs the DESIGN §4 stages in order', async (t) => {
  const result = validateConfig({});
  if (!result.ok) throw new Error('default config must be valid');
  const { config } = result;
  const store = createMemoryStore({ maxEntries: 1000, clock: Date.now });
  t.teardown(() => store.close());
  const deps: StageDeps = {
    generation: await watchGeneration({ store, clock: Date.now, intervalMs: 0, onLoss: () => {} }),
    audit: null,
    store,
    limiters: createLimiters(store, config.rateLimits),
    clients: await createClientRegistry([], store, Date.now),
    verify: async () => {
      throw new Error('not used');
    },
    sessionIds: createSessionIds(new Uint8Array(32)),
    upstreams: createUpstreamPicker(config.upstreams, Date.now),
    streams: createStreamGauge(1),
    relay: createRelay({ replicaId: null, advertiseUrl: null, mcpPath: '/mcp', secret: new Uint8Array(32), store, clock: Date.now }),
    fingerprint: createFingerprint(config.sessions),
    endUpstreamSession: () => {},
    ender: createSessionEnder({ store, owner: '', endUpstream: null, clock: Date.now, log: createLogger('silent') }),
    clock: Date.now,
    stopwatch: () => performance.now(),
  };
  t.same(buildRequestStages(config, deps).map((s) => s.name), [
    'checkTransport', 'resolveClientAddress', 'acceptRelay', 'authenticate', 'loadState', 'rejectBlocked', 'refuseUnauthenticated', 'refuseRevoked', 'enforceRateLimit', 'resolveSession', 'forward',
  ]);
  t.same(buildResponseStages(config, deps).map((s) => s.name), ['capStreams', 'swapSessionId', 'forgetGoneSession', 'endOnDelete']);

  // With a policy (DESIGN §12), authorize judges the message after the session is known and before forwarding.
  const withPolicy = validateConfig({ policy: { default: 'allow', rules: [{ id: 'no-deletes', effect: 'deny', tools: ['delete_*'] }] } });
  if (!withPolicy.ok) throw new Error('policy config must be valid');
  t.same(buildRequestStages(withPolicy.config, deps).map((s) => s.name), [
    'checkTransport', 'resolveClientAddress', 'acceptRelay', 'authenticate', 'loadState', 'rejectBlocked', 'refuseUnauthenticated', 'refuseRevoked', 'enforceRateLimit', 'resolveSession', 'authorize', 'forward',
  ]);
  t.same(buildResponseStages(withPolicy.config, deps).map((s) => s.name), ['capStreams', 'swapSessionId', 'forgetGoneSession', 'endOnDelete', 'filterLists']);
  // The legacy HTTP+SSE message endpoint is another way in: the same policy judges it.
  const legacy = validateConfig({ legacySse: { upstream: 'http://127.0.0.1:9/sse' }, policy: { default: 'deny', rules: [] } });
  if (!legacy.ok) throw new Error(`legacy config must be valid: ${JSON.stringify(legacy.problems)}`);
  t.ok(buildLegacyStages(legacy.config, deps)?.message.map((s) => s.name).includes('authorize'), 'legacy messages are authorized');

  // The last stage is the upstream transport: Streamable HTTP, or the legacy bridge; either is one
  // implementation of the same seam, and the rest of the path does not change with it.
  const http = createUpstreamTransport(config, deps);
  t.same([http.kind, http.forward.name], ['streamable-http', 'forward']);
  const bridged = validateConfig({ legacySse: { upstream: 'http://127.0.0.1:9/sse', bridge: true } });
  if (!bridged.ok) throw new Error('bridge config must be valid');
  const bridge = createUpstreamTransport(bridged.config, deps);
  t.same([bridge.kind, bridge.forward.name], ['legacy-sse', 'bridgeToLegacy']);
  const names = buildRequestStages(bridged.config, deps).map((s) => s.name);
  t.same(names, [...names.slice(0, -1), 'bridgeToLegacy'], 'the bridge takes forward\'s place, and only that');
  t.same(names.slice(0, -1), buildRequestStages(config, deps).map((s) => s.name).slice(0, -1), 'every stage before it is the same');
  const mine: UpstreamTransport = { kind: 'streamable-http', forward: function mine() {}, close: () => {} };
  t.equal(buildRequestStages(config, { ...deps, upstreamTransport: mine }).at(-1), mine.forward, 'a transport the composition root made is the one used');

  // Other routes read the address's block up front (they have no state load); the admin listener not at all.
  t.same(buildEntryStages(config, deps).map((s) => s.name), ['checkTransport', 'resolveClientAddress', 'loadAddressBlock', 'rejectBlocked']);
  t.same(buildEntryStages(config, deps, 'none').map((s) => s.name), ['checkTransport', 'resolveClientAddress']);
  t.same(buildLegacyStages(legacy.config, deps)?.stream.map((s) => s.name).slice(0, 8), [
    'checkTransport', 'resolveClientAddress', 'authenticate', 'loadState', 'rejectBlocked', 'refuseUnauthenticated', 'refuseRevoked', 'enforceRateLimit',
  ], 'a legacy stream makes the same decisions in the same order');
  // Refusal bookkeeping is a list beside the stages: the event before anything that may need the store.
  const hooks = buildRefusalHooks({ metrics: createMetrics(), limiters: deps.limiters, upstreams: deps.upstreams, failedAttemptPoints: 10, upstreamLabel: () => 'x' });
  t.same(hooks.map((h) => h.name), ['logRefusal', 'countRefusal', 'markUpstreamDown', 'countFailedAttempt']);
});
