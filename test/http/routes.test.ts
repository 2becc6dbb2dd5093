import t from 'tap';
import { routeTable } from '../../src/http/routes.js';
import type { Feature } from '../../src/http/routes.js';

const noop = (): void => {};

t.test('features compose: each listener gets the routes its features bring, in order', async (t) => {
  const a: Feature = { name: 'a', routes: [{ path: '/a', template: '/a', kind: 'plain', methods: { GET: noop } }], adminRoutes: [{ path: '/x', template: '/x', kind: 'admin', methods: { GET: noop } }] };
  const b: Feature = { name: 'b', routes: [{ path: '/b', template: '/b', kind: 'plain', methods: { GET: noop } }] };
  t.same(routeTable([a, b], 'public').map((r) => r.path), ['/a', '/b']);
  t.same(routeTable([a, b], 'admin').map((r) => r.path), ['/x']);
  t.same(routeTable([], 'public'), []);
});

t.test('a path two features claim is a startup error naming both, not a silent shadow', async (t) => {
  const first: Feature = { name: 'oauth', routes: [{ path: '/oauth/token', template: '/oauth/token', kind: 'oauth', methods: { POST: noop } }] };
  const second: Feature = { name: 'plugin', routes: [{ path: '/oauth/token', template: '/oauth/token', kind: 'plain', methods: { GET: noop } }] };
  t.throws(() => routeTable([first, second], 'public'), /\/oauth\/token is claimed by both the oauth and the plugin feature/);
  t.doesNotThrow(() => routeTable([first, second], 'admin'), 'listeners are separate');
});
