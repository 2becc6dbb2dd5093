import t from 'tap';
import { ERROR_CATALOG } from '../../src/errors.js';
import { logEvent, SECURITY_EVENTS } from '../../src/observability/events.js';
import { createLogger } from '../../src/observability/logger.js';
import { shortHash } from '../../src/observability/short-hash.js';
import { logSink } from '../fixtures/warden.js';

t.test('the event set holds DESIGN §9 names and every catalog event', async (t) => {
  for (const name of ['auth.failed', 'token.issued', 'token.revoked', 'refresh.reuse', 'session.created', 'session.not_found', 'session.binding_mismatch', 'session.ended', 'rate.limited', 'address.blocked', 'store.unavailable']) {
    t.ok(SECURITY_EVENTS.includes(name as never), name);
  }
  for (const [code, entry] of Object.entries(ERROR_CATALOG)) t.ok(SECURITY_EVENTS.includes(entry.event), `${code} → ${entry.event}`);
  t.ok(SECURITY_EVENTS.every((e) => /^[a-z]+\.[a-z_]+$/.test(e)), 'names are stable dotted lowercase');
});

t.test('logEvent: one JSON line with the event, its level, and ids only as short hashes', async (t) => {
  const { sink, stream } = logSink();
  const log = createLogger('info', stream).child({ reqId: 'req-1' });
  const sessionId = 'S'.repeat(40);
  const jti = 'jti-0123456789abcdef';
  const grantId = 'grant-0123456789abcdef';
  logEvent(log, 'session.created', { clientId: 'alice', address: '192.0.2.1', sessionId, jti, grantId });
  logEvent(log, 'address.blocked', { reason: 'threshold', count: 3, address: '192.0.2.1' });
  logEvent(log, 'store.unavailable', { sessionId: null });
  t.equal(sink.lines.length, 3);
  t.match(sink.lines[0], { event: 'session.created', level: 'info', msg: 'session.created', reqId: 'req-1', clientId: 'alice', address: '192.0.2.1', session: shortHash(sessionId), jti: shortHash(jti), grant: shortHash(grantId) });
  t.equal(shortHash(sessionId).length, 12);
  t.notOk('sessionId' in (sink.lines[0] ?? {}), 'the raw field is not passed through');
  for (const raw of [sessionId, jti, grantId]) t.notOk(sink.text().includes(raw), 'no full id in the text');
  t.match(sink.lines[1], { event: 'address.blocked', level: 'warn', reason: 'threshold', count: 3 });
  t.match(sink.lines[2], { event: 'store.unavailable', level: 'error' });
  t.notOk('session' in (sink.lines[2] ?? {}), 'a null id is left out');
});

t.test('the logger redacts secret-looking fields as a second net', async (t) => {
  const { sink, stream } = logSink();
  const log = createLogger('info', stream);
  log.info({ token: 'tok-secret-1', secret: 'sec-2', authorization: 'Bearer tok-3', headers: { authorization: 'Bearer tok-4', cookie: 'c=5' }, nested: { password: 'pw-6' } }, 'oops');
  for (const value of ['tok-secret-1', 'sec-2', 'tok-3', 'tok-4', 'c=5', 'pw-6']) t.notOk(sink.text().includes(value), `${value} redacted`);
  t.match(sink.lines[0], { token: '[redacted]', headers: { authorization: '[redacted]' }, service: 'mcp-warden' });
});
