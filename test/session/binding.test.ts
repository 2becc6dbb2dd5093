import t from 'tap';
import { createFingerprint } from '../../src/session/binding.js';
import type { Config } from '../../src/config/schema.js';

const sessions = (bindTo: ('client' | 'userAgent' | 'address')[]) => ({ bindTo, addressPrefixV4: 24, addressPrefixV6: 64 }) as unknown as Config['sessions'];

t.test('bound to the client only: no fingerprint at all', async (t) => {
  const fp = createFingerprint(sessions(['client']));
  t.equal(fp({ userAgent: 'a', address: '10.0.0.1' }), '');
  t.equal(fp({ userAgent: 'b', address: '192.168.1.1' }), '');
});

t.test('the user agent binding hashes the user agent and ignores the address', async (t) => {
  const fp = createFingerprint(sessions(['client', 'userAgent']));
  const one = fp({ userAgent: 'agent/1', address: '10.0.0.1' });
  t.match(one, /^[A-Za-z0-9_-]{16}$/, 'a short hash, never the header itself');
  t.equal(fp({ userAgent: 'agent/1', address: '172.16.0.9' }), one);
  t.not(fp({ userAgent: 'agent/2', address: '10.0.0.1' }), one);
  t.not(fp({ userAgent: undefined, address: '10.0.0.1' }), one);
  t.equal(fp({ userAgent: undefined, address: '10.0.0.1' }), fp({ userAgent: '', address: '10.0.0.1' }), 'absent and empty are the same agent');
});

t.test('the address binding compares the configured prefix, IPv4-mapped IPv6 as IPv4', async (t) => {
  const fp = createFingerprint(sessions(['address']));
  const home = fp({ userAgent: 'x', address: '10.1.2.3' });
  t.equal(fp({ userAgent: 'y', address: '10.1.2.250' }), home, 'same /24, any agent');
  t.equal(fp({ userAgent: 'x', address: '::ffff:10.1.2.9' }), home, 'an IPv4-mapped address is the IPv4 one');
  t.not(fp({ userAgent: 'x', address: '10.1.3.3' }), home);
  const v6 = fp({ userAgent: 'x', address: '2001:db8:1:2::1' });
  t.equal(fp({ userAgent: 'x', address: '2001:db8:1:2:ffff::9' }), v6, 'same /64');
  t.not(fp({ userAgent: 'x', address: '2001:db8:1:3::1' }), v6);
});

t.test('both: either changing is a mismatch', async (t) => {
  const fp = createFingerprint(sessions(['client', 'userAgent', 'address']));
  const base = fp({ userAgent: 'a', address: '10.0.0.1' });
  t.not(fp({ userAgent: 'b', address: '10.0.0.1' }), base);
  t.not(fp({ userAgent: 'a', address: '10.9.0.1' }), base);
  t.equal(fp({ userAgent: 'a', address: '10.0.0.77' }), base);
});
