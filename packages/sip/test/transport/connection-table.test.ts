/** The connection table's clocks: idle time counts traffic both ways, liveness only the peer's. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Connection, ConnectionTable } from '../../src/transport/connection-table.js';
import { FakeClock } from '../../src/util/clock.js';

function connection(id: string): Connection {
  return {
    id,
    flow: { protocol: 'tcp', localAddress: '127.0.0.1', localPort: 5060, remoteAddress: '192.0.2.7', remotePort: 40000, connectionId: id },
    write: async () => undefined,
    close: async () => undefined,
    destroy: () => undefined,
    isOpen: true,
  };
}

test('msSinceInbound: reset by what the peer sends, not by what we send; unknown connections are undefined', () => {
  const clock = new FakeClock();
  const idle: string[] = [];
  const table = new ConnectionTable<Connection>(clock, 10_000, (c) => idle.push(c.id));
  table.add(connection('c1'));
  clock.advance(3_000);
  assert.equal(table.msSinceInbound('c1'), 3_000);
  table.touch('c1'); // we wrote to it
  clock.advance(1_000);
  assert.equal(table.msSinceInbound('c1'), 4_000, 'our own sends prove nothing about the peer');
  table.touch('c1', true); // a keep-alive from the peer
  clock.advance(500);
  assert.equal(table.msSinceInbound('c1'), 500);
  assert.equal(table.msSinceInbound('nope'), undefined);
  // Idle closing still counts traffic both ways.
  clock.advance(9_000);
  table.touch('c1');
  clock.advance(9_000);
  assert.deepEqual(idle, []);
  clock.advance(1_500);
  assert.deepEqual(idle, ['c1']);
});
