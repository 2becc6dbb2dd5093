import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import { buildRequestStages } from '../../src/pipeline/index.js';

t.test('the MCP path runs the DESIGN §4 stages in order', async (t) => {
  const result = validateConfig({});
  if (!result.ok) throw new Error('default config must be valid');
  const names = buildRequestStages(result.config, { clock: Date.now }).map((s) => s.name);
  t.same(names, ['checkTransport', 'resolveClientAddress', 'passThroughSession', 'forward']);
});
