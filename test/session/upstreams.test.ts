import t from 'tap';
import { createUpstreamPicker } from '../../src/session/upstreams.js';

const URLS = ['http://u0/mcp', 'http://u1/mcp', 'http://u2/mcp'];

t.test('round robin over the upstreams; url() resolves a pinned index, null when out of range', async (t) => {
  const picker = createUpstreamPicker(URLS, () => 0);
  t.same(Array.from({ length: 7 }, () => picker.next()), [0, 1, 2, 0, 1, 2, 0]);
  t.same([0, 1, 2].map((i) => picker.url(i)), URLS);
  t.equal(picker.url(3), null, 'a record pinned to an upstream the config no longer has');
  t.equal(picker.url(-1), null);
});

t.test('an upstream that refused a connection is skipped by new sessions for a while', async (t) => {
  let now = 1_000;
  const picker = createUpstreamPicker(URLS, () => now);
  picker.markDown(1);
  t.same(Array.from({ length: 4 }, () => picker.next()), [0, 2, 0, 2]);
  t.equal(picker.url(1), URLS[1], 'existing sessions keep their pin: url() is not affected');
  now += 10_000;
  t.same(Array.from({ length: 3 }, () => picker.next()), [0, 1, 2], 'back in rotation after the quarantine');
  picker.markDown(7);
  picker.markDown(-1);
  t.same(Array.from({ length: 3 }, () => picker.next()), [0, 1, 2], 'unknown indexes are ignored');
});

t.test('when every upstream is down it keeps rotating instead of refusing', async (t) => {
  const picker = createUpstreamPicker(URLS, () => 5);
  for (const i of [0, 1, 2]) picker.markDown(i);
  const picks = Array.from({ length: 6 }, () => picker.next());
  t.same(new Set(picks), new Set([0, 1, 2]));
  t.ok(picks.every((p, i) => i === 0 || p !== picks[i - 1]), 'never the same one twice in a row');
});

t.test('one upstream: always 0', async (t) => {
  const picker = createUpstreamPicker(['http://only/mcp'], () => 0);
  picker.markDown(0);
  t.same([picker.next(), picker.next()], [0, 0]);
});
