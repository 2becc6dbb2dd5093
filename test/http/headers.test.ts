import t from 'tap';
import { addressPrefix, clientAddress, inCidr, isOriginAllowed, isSecure, parseBasic, parseBearer } from '../../src/http/headers.js';

t.test('parseBearer follows RFC 6750 token68', async (t) => {
  t.same(parseBearer('Bearer abc.def-ghi_jk~l+m/n=='), { ok: true, value: 'abc.def-ghi_jk~l+m/n==' });
  t.same(parseBearer('bearer abc'), { ok: true, value: 'abc' }, 'scheme is case-insensitive');
  t.same(parseBearer(undefined), { ok: false, reason: 'missing' });
  t.same(parseBearer(''), { ok: false, reason: 'missing' });
  for (const bad of ['Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'Bearer a,b', 'Bearer "abc"', 'Bearerabc', 'Bearer =abc', `Bearer ${'a'.repeat(9000)}`, 'Bearer é']) {
    t.same(parseBearer(bad), { ok: false, reason: 'malformed' }, JSON.stringify(bad.slice(0, 20)));
  }
  t.same(parseBearer(['Bearer a', 'Bearer b']), { ok: false, reason: 'malformed' }, 'two headers are refused');
});

t.test('parseBasic decodes RFC 6749 §2.3.1 credentials', async (t) => {
  const enc = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;
  t.same(parseBasic(enc('agent-1:s3cret')), { ok: true, value: { id: 'agent-1', secret: 's3cret' } });
  t.same(parseBasic(enc('a%3Ab:x%2By+z')), { ok: true, value: { id: 'a:b', secret: 'x+y z' } }, 'form-decoded');
  t.same(parseBasic(enc('nocolon')), { ok: false, reason: 'malformed' });
  t.same(parseBasic(enc(':secret')), { ok: false, reason: 'malformed' });
  t.same(parseBasic(enc('a:%zz')), { ok: false, reason: 'malformed' });
  t.same(parseBasic('Bearer x'), { ok: false, reason: 'malformed' });
  t.same(parseBasic(undefined), { ok: false, reason: 'missing' });
});

t.test('Origin allow-list', async (t) => {
  const allowed = new Set(['https://app.example']);
  t.ok(isOriginAllowed(undefined, allowed), 'absent Origin (non-browser) passes');
  t.ok(isOriginAllowed('https://app.example', allowed));
  for (const bad of ['https://evil.example', 'null', 'https://app.example.evil', 'https://APP.example', '']) t.notOk(isOriginAllowed(bad, allowed), bad);
});

t.test('client address and trustProxy', async (t) => {
  t.equal(clientAddress('::ffff:10.0.0.5', '1.2.3.4', { kind: 'none' }), '10.0.0.5', 'X-Forwarded-For ignored when trustProxy is off');
  t.equal(clientAddress('10.0.0.5', '1.2.3.4, 5.6.7.8', { kind: 'hops', hops: 1 }), '5.6.7.8');
  t.equal(clientAddress('10.0.0.5', '1.2.3.4, 5.6.7.8', { kind: 'hops', hops: 2 }), '1.2.3.4');
  t.equal(clientAddress('10.0.0.5', '1.2.3.4, 5.6.7.8', { kind: 'hops', hops: 5 }), '1.2.3.4');
  t.equal(clientAddress('10.0.0.5', '9.9.9.9, 1.2.3.4, 10.0.0.7', { kind: 'cidrs', cidrs: ['10.0.0.0/8'] }), '1.2.3.4', 'stops at the first untrusted hop');
  t.equal(clientAddress('8.8.8.8', '1.2.3.4', { kind: 'cidrs', cidrs: ['10.0.0.0/8'] }), '8.8.8.8', 'untrusted peer: header ignored');
  t.equal(clientAddress('10.0.0.5', 'garbage', { kind: 'hops', hops: 1 }), '10.0.0.5', 'malformed header ignored');
  t.ok(inCidr('fd00::1', 'fd00::/8'));
  t.notOk(inCidr('fe80::1', 'fd00::/8'));
  t.ok(inCidr('::ffff:192.168.1.9', '192.168.1.0/24'));
  t.notOk(inCidr('192.168.2.9', '192.168.1.0/24'));
  t.equal(addressPrefix('192.168.1.77', 24, 64), addressPrefix('192.168.1.3', 24, 64));
  t.not(addressPrefix('192.168.1.77', 24, 64), addressPrefix('192.168.2.3', 24, 64));
  t.equal(addressPrefix('2001:db8:1:2::5', 24, 64), addressPrefix('2001:db8:1:2::9', 24, 64));
});

t.test('secure transport', async (t) => {
  t.ok(isSecure(true, undefined, false));
  t.notOk(isSecure(false, 'https', false), 'X-Forwarded-Proto from an untrusted peer is ignored');
  t.ok(isSecure(false, 'https', true));
  t.notOk(isSecure(false, 'http, https', true), 'the first hop decides');
});

t.test('authorizationField sees every Authorization line Node folded away', async (t) => {
  const { authorizationField } = await import('../../src/http/headers.js');
  t.equal(authorizationField(undefined, ['Host', 'x']), undefined);
  t.equal(authorizationField('Bearer a', ['Host', 'x', 'Authorization', 'Bearer a']), 'Bearer a');
  t.same(authorizationField('Bearer a', ['authorization', 'Bearer a', 'AUTHORIZATION', '']), ['Bearer a', ''], 'two lines, any case');
  t.same(parseBearer(authorizationField('Bearer a', ['authorization', 'Bearer a', 'Authorization', 'Bearer b'])), { ok: false, reason: 'malformed' });
});
